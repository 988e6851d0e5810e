"""What a coordinator reads to take a run over: statuses, not the data of every success."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import Any

import redis

from rqdag.shared.model.task import TaskResult, TaskStatus
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.records import RunState, decode_into, text
from rqdag.shared.store.scripts import Scripts

# Stands for every plain success the coordinator did not load: it needs their
# status only (workers read the data they pass on straight from Redis).
STORED_SUCCESS = TaskResult(
    TaskStatus.SUCCESS, message="success kept in Redis (not loaded by the coordinator)"
)


def read_progress(client: redis.Redis, scripts: Scripts, run_id: str) -> RunState:
    """The run's results and in-flight attempts at one instant, successes as :data:`STORED_SUCCESS`.

    Any other result, and every dispatch entry, is decoded and checked as
    :meth:`RunStore.read_state` does; problems are listed, never raised.
    """
    newest, successes, others, dispatch = scripts.read_progress(RunKeys(run_id), client=client)
    state = RunState(last_event_id=newest or b"0-0")
    if successes and type(successes[0]) is bytes:
        names: Iterator[str] = map(bytes.decode, successes, repeat("utf-8"), repeat("replace"))
    else:
        names = map(text, successes)
    state.results = dict.fromkeys(names, STORED_SUCCESS)
    decode_into(state, run_id, _pairs(others), _pairs(dispatch))
    return state


def _pairs(flat: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
    items = iter(flat)
    return zip(items, items, strict=True)
