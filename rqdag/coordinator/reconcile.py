"""Rebuilding in-flight attempts after a coordinator restart."""

from __future__ import annotations

import logging

from rqdag.coordinator.phases import Phase
from rqdag.coordinator.state import TaskStateManager
from rqdag.errors import DecodeError
from rqdag.shared.model.codec import decode_result
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import AttemptState
from rqdag.shared.store.records import RunState

log = logging.getLogger("rqdag.coordinator")


def restore_in_flight(
    state: TaskStateManager,
    run_state: RunState,
    run_id: str,
    now: float,
    *,
    requeue_running: bool = False,
) -> None:
    """Adopt every attempt the dispatch hash shows in flight.

    Queued and running attempts are waited for (their completion arrives on the
    event stream); an attempt that failed and awaits its retry is rescheduled.
    With ``requeue_running`` (every worker is known dead) running attempts are
    handed back. The failures an entry counted so far come back with it, so a
    handed-back or lost attempt costs one more from the task's retry budget, as
    it would have under the coordinator that dispatched it: at-least-once tasks
    run again while the budget lasts, at-most-once tasks fail with "outcome
    unknown". So does an attempt whose entry is unreadable (see
    :func:`_unreadable_entry`).
    """
    for name in run_state.unreadable_dispatch:
        _unreadable_entry(state, run_state, run_id, name, now)
    for name, entry in run_state.dispatch.items():
        if name in run_state.results:
            continue  # a result exists: the entry is left over and void
        try:
            state.task(name)
        except KeyError:
            log.error("run '%s': dispatch entry for unknown task '%s' ignored", run_id, name)
            continue
        state.adopt(name, entry.attempt, entry.token, None, failures=entry.failures, retry_of=entry.retry_of)
        if entry.state is AttemptState.RETRY_WAIT:
            result = _last_result(run_id, name, entry.last_result)
            state.complete(name, entry.token, result, now)
        elif entry.state is AttemptState.LOST:  # voided by a coordinator that died before recording it
            state.complete(name, entry.token, lost_result(entry.worker, None), now, lost=True)
        elif entry.state is AttemptState.VANISHED or entry.waiting:  # never started; held: no job exists
            state.requeue(name, entry.token)
        elif entry.state is AttemptState.HANDED_BACK or (
            entry.state is AttemptState.RUNNING and requeue_running
        ):
            state.hand_back(name, entry.token, lost_result(entry.worker, None), now)


def _unreadable_entry(
    state: TaskStateManager, run_state: RunState, run_id: str, name: str, now: float
) -> None:
    """A task whose dispatch entry is garbage (reported already): did an attempt of it start?

    Nobody can tell. A task whose dependencies are not all done cannot have
    been sent; an at-least-once task is simply sent (again). An at-most-once task
    that may have been sent may have run: its outcome is unknown, it is not run again.
    """
    if name in run_state.results:
        return
    try:
        task = state.task(name)
    except KeyError:
        return
    if not task.at_most_once or state.phase(name) is not Phase.READY:
        return
    token = f"unreadable-{name}"
    state.adopt(name, 0, token, None)
    result = TaskResult.failure("its dispatch entry was unreadable at takeover: an attempt may have run")
    state.complete(name, token, result, now, lost=True)
    log.error("run '%s': at-most-once task '%s' is not run again: its outcome is unknown", run_id, name)


def lost_result(worker: str | None, silent_s: float | None) -> TaskResult:
    """The failure of an attempt whose worker vanished."""
    why = "stopped with its coordinator" if silent_s is None else f"no heartbeat for {silent_s:.0f}s"
    return TaskResult.failure(f"worker {worker or '?'} lost while the task ran ({why})")


def _last_result(run_id: str, name: str, raw: str | None) -> TaskResult:
    if raw is None:
        return TaskResult.failure("attempt failed (its result was not kept)")
    try:
        return decode_result(raw, what=f"run '{run_id}': dispatch '{name}' last_result")
    except DecodeError as exc:
        log.error("%s", exc)
        return TaskResult.failure(f"stored result is unreadable: {exc}")
