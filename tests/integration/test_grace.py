"""A stopping worker's grace timer (rqdag.worker.grace), at the moments a SIGTERM can land.

The handler runs in the main thread wherever it was: before the attempt that just
passed its start step is recorded as the current one, or while it is being
recorded. Each case runs in a child process (the hand-back ends its process)
against a real Redis holding the attempt's running dispatch entry.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import redis

from rqdag.shared.store.keys import RunKeys
from tests.support.processes import rqdag_env

SETUP = """
import os, signal, threading, time
from rqdag.shared.connect import connect
from rqdag.worker.environment import WorkerSettings, build_environment
from rqdag.worker.grace import arm_hand_back
env = build_environment(WorkerSettings(tasks=("tests.integration.flows",)), connect({url!r}), "w")
"""

BEFORE_RECORDED = """
arm_hand_back(env, "w", 0.3)  # the signal, between the start step and the attempt's record
env.current.set("grace", "t", "tok")
time.sleep(10)  # the task goes on
print("not handed back")
"""

WHILE_RECORDING = """
signal.signal(signal.SIGUSR1, lambda *_: arm_hand_back(env, "w", 0.3))
with env.current._lock:  # the main thread inside CurrentAttempt.set() when the signal lands
    env.current._by_slot[threading.get_ident()] = ("grace", "t", "tok")
    os.kill(os.getpid(), signal.SIGUSR1)  # its handler runs here, with the lock held
time.sleep(10)
print("not handed back")
"""


def _run(
    redis_url: str, redis_conn: redis.Redis, case: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    keys = RunKeys("grace")
    entry = {"attempt": 1, "token": "tok", "job_id": "j", "state": "running", "worker": "w"}
    redis_conn.hset(keys.dispatch, "t", json.dumps(entry))
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-c", SETUP.format(url=redis_url) + case],
            env=rqdag_env(),
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError("the worker hung in its SIGTERM handler") from None
    return done, time.monotonic() - started


def _assert_handed_back(redis_conn: redis.Redis, done: subprocess.CompletedProcess[str]) -> None:
    keys = RunKeys("grace")
    assert done.returncode == 0, done.stderr
    assert "not handed back" not in done.stdout, "the grace period did not bound the task"
    assert json.loads(redis_conn.hget(keys.dispatch, "t") or b"{}")["state"] == "handed_back"
    events = [f for _, f in redis_conn.xrange(keys.events) if f[b"kind"] == b"handback"]
    assert [(f[b"task"], f[b"token"]) for f in events] == [(b"t", b"tok")]


def test_a_sigterm_before_the_attempt_is_recorded_still_hands_it_back(
    redis_url: str, redis_conn: redis.Redis
) -> None:
    done, took = _run(redis_url, redis_conn, BEFORE_RECORDED)
    _assert_handed_back(redis_conn, done)
    assert took < 8, "handed back at the end of the grace period, not after the task"


def test_a_sigterm_while_the_attempt_is_recorded_does_not_deadlock(
    redis_url: str, redis_conn: redis.Redis
) -> None:
    done, took = _run(redis_url, redis_conn, WHILE_RECORDING)
    _assert_handed_back(redis_conn, done)
    assert took < 8


WHILE_TASK_WRITES = """
import logging
signal.signal(signal.SIGUSR1, lambda *_: logging.getLogger("rqdag.worker").warning("worker w stopping"))
with env.logs.capture("grace", "t", 1) as capture:
    with capture.buffer._lock:  # the task's own print, half-way through its write, when the signal lands
        os.kill(os.getpid(), signal.SIGUSR1)  # the handler's log line reaches the task's capture here
print("went on")
"""


def test_a_signal_handlers_log_line_while_the_task_writes_does_not_deadlock(
    redis_url: str, redis_conn: redis.Redis
) -> None:
    done, _ = _run(redis_url, redis_conn, WHILE_TASK_WRITES)
    assert done.returncode == 0, done.stderr
    assert "went on" in done.stdout
