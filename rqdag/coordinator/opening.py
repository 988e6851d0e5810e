"""Opening a run: the state a driver rebuilds from what it read of the run in Redis."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from rqdag.coordinator.map_load import load_expansions
from rqdag.coordinator.progress import Opening, read_progress
from rqdag.coordinator.reconcile import restore_in_flight
from rqdag.coordinator.state import TaskStateManager
from rqdag.errors import DecodeError, RunNotFoundError
from rqdag.shared.model.definition import decode_table
from rqdag.shared.store.records import RunMeta, RunState, parse_meta
from rqdag.shared.store.runs import RunStore

log = logging.getLogger("rqdag.coordinator")


def opened_meta(run_id: str, opening: Opening) -> RunMeta:
    """The run's meta from its opening read; RunNotFoundError if absent, DecodeError naming a bad field."""
    if not opening.meta:
        raise RunNotFoundError(f"no run '{run_id}'")
    return parse_meta(run_id, opening.meta)


def rebuild(
    client: redis.Redis, run_id: str, opening: Opening, now: float, *, requeue_running: bool
) -> tuple[TaskStateManager, RunState]:
    """The run's state from its definition and its progress (read in chunks unless the opening
    read held all of it); its in-flight attempts adopted."""
    if opening.definition is None:
        raise DecodeError(f"run '{run_id}': definition is missing")
    table = decode_table(opening.definition, run_id=run_id)
    run_state = opening.progress if opening.progress is not None else read_progress(client, run_id)
    load_expansions(RunStore(client), run_id, table, run_state)
    for problem in run_state.problems:
        log.error("%s", problem)
    state = TaskStateManager(table, track_timeouts=False, snapshot=run_state.results, keep_all=True)
    restore_in_flight(state, run_state, run_id, now, requeue_running=requeue_running)
    return state, run_state


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a run loads, until its first dispatch.

    Loading makes some hundred thousand objects that all live on; the collector
    would scan the growing heap again and again (half of a large run's load
    time). It runs once after the first dispatch instead, while workers start.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
