"""A stopping worker's grace period: the tasks still running after it are handed back.

:func:`arm_hand_back` runs inside the SIGTERM handler, so in the main thread at
any point of its code: in a simple worker, between a task's start step and its
attempt being recorded as the current one, or in the middle of recording it.
So the timer is armed whatever runs at the signal, and at its end every attempt
running then is handed back (a stopping worker takes no new job: those are the
ones that were running, or starting, at the signal). The running attempts are
kept under a reentrant lock (:class:`~rqdag.worker.environment.CurrentAttempt`),
which the handler may take while the code it interrupted holds it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

import redis

from rqdag.shared.store.keys import RunKeys
from rqdag.worker.environment import WorkerEnvironment

log = logging.getLogger("rqdag.worker")


def arm_hand_back(
    env: WorkerEnvironment, worker: str, grace: float, leave: Callable[[], None] | None = None
) -> None:
    """Give each attempt running now ``grace`` seconds, then hand back those still running and exit;
    ``leave`` (the worker leaving rqdag's and RQ's registries) is called before the exit."""
    for run_id, task, _ in env.current.all():
        log.warning(
            "worker %s stopping: run %r, task %r has %gs to finish before it is handed back",
            worker,
            run_id,
            task,
            grace,
        )
    timer = threading.Timer(grace, _hand_back, args=(env, leave))
    timer.daemon = True
    timer.start()


def _hand_back(env: WorkerEnvironment, leave: Callable[[], None] | None) -> None:
    late = env.current.all()
    if not late:
        return  # they all finished in time (an idle worker has left already)
    for run_id, task, token in late:
        try:
            handed = env.scripts.hand_back(RunKeys(run_id), task=task, token=token)
        except redis.RedisError as exc:
            log.error("run %r, task %r: not handed back (%s); its heartbeat will lapse", run_id, task, exc)
            handed = False
        if handed:
            log.warning("run %r, task %r: not finished within the grace period: handed back", run_id, task)
    if leave is not None:
        try:
            leave()  # else its entries lapse only after its heartbeat limit
        except Exception as exc:  # the exit must come whatever happens
            log.warning("worker leaving with tasks handed back: registries not updated (%s)", exc)
    os._exit(0)  # the tasks are abandoned in mid-call: nothing of this process may go on
