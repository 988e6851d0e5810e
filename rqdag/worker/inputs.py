"""A task's inputs where some dependencies are read from Redis only when the task reads them.

A mapped task's child gets its source's data in ``ctx.inputs`` like any input,
but the source's list may be long and most children never look at it: its
result is read (one HGET) the first time the child asks for it, not with the
start step of every child.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from rqdag.shared.model.job import TaskJob

_ABSENT = object()


class LazyInputs(Mapping[str, Any]):
    """``eager`` inputs, plus ``lazy`` dependencies loaded by ``load(name)`` when first read.

    ``load`` returns the dependency's data, or :data:`_ABSENT` when it has none to
    pass on (no result, or a result that is not a success).
    """

    def __init__(self, eager: dict[str, Any], lazy: tuple[str, ...], load: Callable[[str], Any]) -> None:
        self._values = dict(eager)
        self._pending = [name for name in lazy if name not in eager]
        self._load = load

    def _resolve(self, name: str) -> None:
        if name in self._pending:
            self._pending.remove(name)
            value = self._load(name)
            if value is not _ABSENT:
                self._values[name] = value

    def __getitem__(self, name: str) -> Any:
        self._resolve(name)
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        for name in list(self._pending):
            self._resolve(name)
        return iter(self._values)

    def __len__(self) -> int:
        for name in list(self._pending):
            self._resolve(name)
        return len(self._values)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self._resolve(name)
        return name in self._values


ABSENT = _ABSENT


def eager_dependencies(spec: TaskJob) -> tuple[str, ...]:
    """The dependencies whose results the start step reads (all but the lazy ones)."""
    if not spec.lazy_inputs:
        return spec.depends_on
    return tuple(d for d in spec.depends_on if d not in spec.lazy_inputs)


def with_lazy(spec: TaskJob, eager: dict[str, Any], load: Callable[[str], Any]) -> Mapping[str, Any]:
    """``eager`` as the task's inputs, with its lazy dependencies loaded on first read."""
    if not spec.lazy_inputs:
        return eager
    return LazyInputs(eager, tuple(d for d in spec.lazy_inputs if d in spec.depends_on), load)
