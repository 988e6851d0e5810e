"""A stopping worker's grace period: the tasks still running after it are handed back."""

from __future__ import annotations

import logging
import os
import threading

import redis

from rqdag.shared.store.keys import RunKeys
from rqdag.worker.environment import WorkerEnvironment

log = logging.getLogger("rqdag.worker")


def arm_hand_back(env: WorkerEnvironment, worker: str, grace: float) -> None:
    """Give each attempt running now ``grace`` seconds, then hand back those still running and exit."""
    attempts = env.current.all()
    if not attempts:
        return
    for run_id, task, _ in attempts:
        log.warning(
            "worker %s stopping: run %r, task %r has %gs to finish before it is handed back",
            worker,
            run_id,
            task,
            grace,
        )
    timer = threading.Timer(grace, _hand_back, args=(env, attempts))
    timer.daemon = True
    timer.start()


def _hand_back(env: WorkerEnvironment, attempts: list[tuple[str, str, str]]) -> None:
    running = set(env.current.all())
    late = [attempt for attempt in attempts if attempt in running]
    if not late:
        return  # they all finished in time
    for run_id, task, token in late:
        try:
            handed = env.scripts.hand_back(RunKeys(run_id), task=task, token=token)
        except redis.RedisError as exc:
            log.error("run %r, task %r: not handed back (%s); its heartbeat will lapse", run_id, task, exc)
            handed = False
        if handed:
            log.warning("run %r, task %r: not finished within the grace period: handed back", run_id, task)
    os._exit(0)  # the tasks are abandoned in mid-call: nothing of this process may go on
