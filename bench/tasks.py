"""The task functions of the benchmarks: both sides run a function that does nothing.

Workers import this module (``--tasks bench.tasks`` for rqdag workers, RQ's import
path ``bench.tasks.raw_noop`` for raw RQ workers).
"""

from __future__ import annotations

from rqdag import TaskContext


def noop(ctx: TaskContext) -> None:
    """An rqdag task that does nothing."""
    return None


def raw_noop() -> None:
    """A raw RQ job that does nothing."""
    return None
