"""The state machine's part for mapped tasks: expanding into children, and their aggregate.

A mapped task whose dependencies are resolved expands (its source's data,
through :func:`~rqdag.shared.model.mapping.expand`) into children that are
ordinary tasks from then on (appended to the :class:`TaskTable`); it stays
``MAPPED`` until every child has a result, then gets their aggregate. A child
whose result came from a snapshot (held until its mapped task expands) keeps it
when the expansion has the same KEY again.

Children's results that the coordinator did not load (a takeover loads
successes by status only) are asked for through :meth:`take_gathers` /
:meth:`settle_map`: the executor reads them from its backend.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Mapping
from itertools import repeat
from typing import Any

from rqdag.coordinator.phases import STORED_SUCCESS, Phase
from rqdag.errors import ImportPathError
from rqdag.shared.model.importing import resolve_path
from rqdag.shared.model.mapping import Expansion, KeyFunction, aggregate, expand, parent_of
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task_table import TaskTable
from rqdag.shared.model.vocabulary import TaskStatus


class MapStateMixin:
    """Expansion and aggregation, over :class:`TaskStateManager`'s columns."""

    _table: TaskTable
    _names: list[str]
    _index: dict[str, int]
    _lock: threading.RLock
    _phase: list[Phase]
    _remaining: list[int]
    _attempt: list[int]
    _results: dict[str, TaskResult]
    _ready: list[tuple[int, int]]
    _unfinished: int
    _in_doubt: set[str]
    _held: dict[str, TaskResult]
    _map_left: dict[int, int]
    _new_expansions: list[tuple[str, Expansion]]
    _gathers: list[tuple[str, list[str]]]
    _key_functions: dict[str, KeyFunction | None]
    _finish: Callable[[int, TaskResult], None]

    def _init_maps(self) -> None:
        self._held = {}
        self._map_left = {}
        self._new_expansions = []
        self._gathers = []
        self._key_functions = {}

    def _hold(self, name: str, result: TaskResult, keep_all: bool) -> bool:
        """Keep a snapshot entry of a child not expanded yet; False if ``name`` is no child."""
        parent = parent_of(name)
        i = self._index.get(parent) if parent is not None else None
        if i is None or i not in self._table.mapped:
            return False
        if keep_all or result.status is TaskStatus.SUCCESS:
            self._held[name] = result
        return True

    # ---- queries --------------------------------------------------------------------

    def take_new_expansions(self) -> list[tuple[str, Expansion]]:
        """Mapped tasks that expanded since the last call, and their children (to persist first)."""
        with self._lock:
            out, self._new_expansions = self._new_expansions, []
            return out

    def take_gathers(self) -> list[tuple[str, list[str]]]:
        """Mapped tasks whose children are all done, with the children whose results are not loaded."""
        with self._lock:
            out, self._gathers = self._gathers, []
            return out

    def children_of(self, name: str) -> list[str]:
        """The children of mapped task ``name``, in item order (none before it expands)."""
        with self._lock:
            names = self._names
            return [names[c] for c in self._table.children.get(self._index[name], ())]

    # ---- transitions ----------------------------------------------------------------

    def settle_map(self, name: str, loaded: Mapping[str, TaskResult]) -> None:
        """Give mapped task ``name`` its aggregate, with the children's results ``loaded`` from storage."""
        with self._lock:
            i = self._index[name]
            if self._phase[i] is not Phase.MAPPED:
                return  # cancelled meanwhile
            self._finish(i, self._aggregate(i, loaded))

    def _begin_map(self, i: int) -> TaskResult | None:
        """Mapped task ``i`` may go on: expand it; returns its result when it has one at once."""
        table = self._table
        if i not in table.children:
            task = table.task(i)
            source = self._results.get(task.map_over or "")
            if source is None or source is STORED_SUCCESS:
                return TaskResult.failure(f"map over '{task.map_over}': its data was not loaded")
            key = self._key_function(i)
            expansion = key if isinstance(key, str) else expand(task, source.data, key)
            digest = task.definition_hash()
            if isinstance(expansion, str):
                return TaskResult(TaskStatus.FAILURE, message=expansion, definition_hash=digest)
            if not expansion.keys:
                return TaskResult(TaskStatus.SUCCESS, data=[], definition_hash=digest)
            left = self._add_children(i, expansion)
            self._new_expansions.append((self._names[i], expansion))
        else:  # expanded before a takeover: count what is left
            doubt = self._in_doubt
            names = self._names
            phase = self._phase
            left = sum(1 for c in table.children[i] if phase[c] is not Phase.DONE or names[c] in doubt)
        self._phase[i] = Phase.MAPPED
        self._map_left[i] = left
        return self._settle(i) if left == 0 else None

    def _add_children(self, i: int, expansion: Expansion) -> int:
        """Append the children; a held result of the same KEY is kept, the others are ready
        (returns how many children are left to finish)."""
        name = self._names[i]
        added = self._table.add_children(i, expansion.names(name), expansion.items)
        count = len(added)
        self._phase.extend([Phase.READY] * count)
        self._remaining.extend([0] * count)
        self._attempt.extend([0] * count)
        priority = -self._table.priorities[i]
        held = self._held
        if held:
            fresh = self._keep_held(name, added, priority)
        else:
            fresh = list(zip(repeat(priority, count), added, strict=True))
        self._unfinished += len(fresh)
        self._ready.extend(fresh)
        heapq.heapify(self._ready)
        doubt = self._in_doubt
        return len(fresh) + (sum(1 for c in added if self._names[c] in doubt) if doubt else 0)

    def _keep_held(self, name: str, added: range, priority: int) -> list[tuple[int, int]]:
        """Children given their held result; the ready-queue entries of the others."""
        held = self._held
        names = self._names
        fresh: list[tuple[int, int]] = []
        for c in added:
            result = held.pop(names[c], None)
            if result is None:
                fresh.append((priority, c))
                continue
            self._results[names[c]] = result
            self._phase[c] = Phase.DONE
            self._attempt[c] = result.metrics.attempt
            if result.in_doubt:
                self._in_doubt.add(names[c])
        for stale in [n for n in held if parent_of(n) == name]:  # a KEY the source gave no more
            del held[stale]
        return fresh

    def _child_done(self, child: int, work: list[tuple[int, TaskResult]]) -> None:
        """A child got its result: its mapped task settles when it was the last one."""
        mapped = self._table.parent(child)
        if mapped is None:
            return
        if self._phase[mapped] is not Phase.MAPPED:
            return
        left = self._map_left[mapped] = self._map_left[mapped] - 1
        if left == 0:
            result = self._settle(mapped)
            if result is not None:
                work.append((mapped, result))

    def _settle(self, i: int) -> TaskResult | None:
        """The aggregate of mapped task ``i``, or None when some children's results must be loaded."""
        names = self._names
        missing = [names[c] for c in self._table.children[i] if self._results[names[c]] is STORED_SUCCESS]
        if missing:
            self._gathers.append((names[i], missing))
            return None
        return self._aggregate(i, {})

    def _aggregate(self, i: int, loaded: Mapping[str, TaskResult]) -> TaskResult:
        names = self._names
        children = [names[c] for c in self._table.children[i]]
        results = [loaded.get(n) or self._results[n] for n in children]
        result = aggregate(children, results)
        return TaskResult(
            result.status,
            message=result.message,
            data=result.data,
            definition_hash=self._table.task(i).definition_hash(),
        )

    def _key_function(self, i: int) -> KeyFunction | str | None:
        """The key function of mapped task ``i`` (imported once when given by path), or why not."""
        name = self._names[i]
        if name in self._key_functions:
            return self._key_functions[name]
        key = self._table.task(i).map_key
        if isinstance(key, str):
            try:
                found: Any = resolve_path(key, what=f"task '{name}': map_key")
            except ImportPathError as exc:
                return str(exc)
            key = found
        self._key_functions[name] = key
        return key
