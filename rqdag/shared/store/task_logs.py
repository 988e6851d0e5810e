"""Reading what a run's tasks wrote: its logs stream, whole or followed as it grows.

Workers write the stream (``append_logs.lua``, see :mod:`rqdag.worker.capture`);
this module only reads it, in chunks of :data:`READ_CHUNK` entries, and keeps
the lines of one task (and attempt) when asked. The stream is the run's own key:
it expires with the run's retention and is deleted with the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import redis

from rqdag.errors import RunNotFoundError
from rqdag.shared.model.task_logs import LogLine
from rqdag.shared.model.vocabulary import FINISHED_RUN_STATUSES
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.records import text
from rqdag.shared.store.runs import RunStore

READ_CHUNK = 1_000
FOLLOW_BLOCK_MS = 1_000  # under redis-py's 5 s socket timeout

Entry = tuple[Any, dict[Any, Any]]


@dataclass(frozen=True)
class LogFilter:
    """Which lines to keep: all of the run's, one task's, one attempt's of it."""

    task: str | None = None
    attempt: int | None = None

    def keeps(self, line: LogLine) -> bool:
        """True when ``line`` passes."""
        return (self.task is None or line.task == self.task) and (
            self.attempt is None or line.attempt == self.attempt
        )


@dataclass
class TaskLogs:
    """The lines read, and whether the run's stream lost its oldest lines to the run's limit."""

    lines: list[LogLine] = field(default_factory=list)
    trimmed: bool = False  # the stream was trimmed: the run wrote more than its limit
    last_id: str = "0-0"  # where a follower goes on from


def read_task_logs(
    store: RunStore,
    run_id: str,
    task: str | None = None,
    attempt: int | None = None,
    limit: int | None = None,
) -> TaskLogs:
    """The run's lines (of ``task``, of its ``attempt``), oldest first; RunNotFoundError if no run.

    With ``limit``, only the newest ``limit`` lines that pass are kept.
    """
    keys = RunKeys(run_id)
    if not store.exists(run_id):
        raise RunNotFoundError(f"no run '{run_id}'")
    wanted = LogFilter(task, attempt)
    found = TaskLogs(trimmed=_trimmed(store.client, keys.logs))
    low = "-"
    while True:
        chunk = cast(list[Entry], store.client.xrange(keys.logs, low, "+", count=READ_CHUNK))
        for entry_id, fields in chunk:
            line = decode_entry(entry_id, fields)
            if wanted.keeps(line):
                found.lines.append(line)
        if chunk:
            found.last_id = text(chunk[-1][0])
            if limit is not None and len(found.lines) > limit:
                del found.lines[:-limit]
        if len(chunk) < READ_CHUNK:
            return found
        low = f"({found.last_id}"


def follow_task_logs(
    store: RunStore, run_id: str, after: str, task: str | None = None, attempt: int | None = None
) -> Iterator[LogLine]:
    """The lines written after entry ``after``, as they come, until the run has ended.

    Once the run's status is finished (or the run is gone) the lines already
    written are read and the iterator ends: a worker ships an attempt's last
    lines before it reports the attempt's result.
    """
    keys = RunKeys(run_id)
    wanted = LogFilter(task, attempt)
    last = after
    while True:
        ended = _ended(store.client, keys)
        block = None if ended else FOLLOW_BLOCK_MS
        reply = store.client.xread({keys.logs: last}, count=READ_CHUNK, block=block)
        entries = cast(list[Entry], cast(list[Any], reply)[0][1]) if reply else []
        for entry_id, fields in entries:
            last = text(entry_id)
            line = decode_entry(entry_id, fields)
            if wanted.keeps(line):
                yield line
        if ended and len(entries) < READ_CHUNK:
            return


def decode_entry(entry_id: Any, fields: dict[Any, Any]) -> LogLine:
    """One stream entry as a line."""
    return LogLine.from_fields(text(entry_id), {text(k): text(v) for k, v in fields.items()})


def _ended(client: redis.Redis, keys: RunKeys) -> bool:
    status = client.hget(keys.meta, "status")
    return status is None or text(status) in FINISHED_RUN_STATUSES


def _trimmed(client: redis.Redis, key: str) -> bool:
    """True when the stream lost entries to its trimming (more were added than it holds)."""
    try:
        info = cast(dict[Any, Any], client.xinfo_stream(key))
    except redis.ResponseError:  # no stream yet
        return False
    added, length = info.get("entries-added"), info.get("length")
    return added is not None and length is not None and int(added) > int(length)
