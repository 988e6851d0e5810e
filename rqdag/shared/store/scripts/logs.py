"""The worker's script for its tasks' output: lines into the run's logs stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.client import Pipeline
from redis.typing import EncodableT

from rqdag.shared.model.task_logs import LogLine
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.scripts.base import ScriptWrapper

BATCH_LINES = 200  # lines per script call: each call's work stays small


class AppendLogs(ScriptWrapper):
    """``append_logs.lua``: add lines to the run's logs stream, trimmed to about ``run_lines``.

    A worker ships its buffer as several calls on one pipeline (:meth:`queue`),
    each of at most :data:`BATCH_LINES` lines; read each reply with :meth:`outcome`.
    """

    name = "append_logs"

    def __call__(
        self, keys: RunKeys, *, lines: Sequence[LogLine], run_lines: int, client: redis.Redis | None = None
    ) -> int | None:
        """How many lines were written; None when the run is gone (nothing written)."""
        return self.outcome(self._eval([keys.meta, keys.logs], self._args(lines, run_lines), client))

    def queue(self, pipe: Pipeline, keys: RunKeys, *, lines: Sequence[LogLine], run_lines: int) -> int:
        """Queue the lines on ``pipe`` in calls of at most :data:`BATCH_LINES`; returns how many calls."""
        calls = 0
        for start in range(0, len(lines), BATCH_LINES):
            self._script(
                [keys.meta, keys.logs], self._args(lines[start : start + BATCH_LINES], run_lines), pipe
            )
            calls += 1
        return calls

    def outcome(self, reply: Any) -> int | None:
        """The typed answer of one reply."""
        try:
            written = int(reply)
        except (TypeError, ValueError):
            raise self._unexpected(reply) from None
        return None if written < 0 else written

    @staticmethod
    def _args(lines: Sequence[LogLine], run_lines: int) -> list[EncodableT]:
        args: list[EncodableT] = [run_lines]
        for line in lines:
            args += line.values()
        return args
