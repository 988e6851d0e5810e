"""Run events and the listeners that receive them; a raising listener never breaks a run."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rqdag.errors import RqdagError
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import RunEventKind

log = logging.getLogger("rqdag.events")

EVENT_KINDS = frozenset(RunEventKind)


@dataclass(frozen=True)
class RunEvent:
    """Something that happened in a run, handed to listeners."""

    kind: RunEventKind
    run_id: str
    task: str | None = None
    attempt: int | None = None
    result: TaskResult | None = None
    results: dict[str, TaskResult] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[RunEvent], object]


class EventBus:
    """Holds listeners by event kind and calls them, isolating their errors."""

    def __init__(self) -> None:
        self._listeners: dict[RunEventKind, list[Listener]] = {}

    def on(self, kind: str, listener: Listener) -> None:
        """Register ``listener`` for ``kind`` (a :class:`RunEventKind`, or its value)."""
        try:
            member = RunEventKind(kind)
        except ValueError:
            known = ", ".join(sorted(EVENT_KINDS))
            raise RqdagError(f"unknown event {kind!r} (known: {known})") from None
        if not callable(listener):
            raise RqdagError(f"listener for {member.value!r} must be callable, got {listener!r}")
        self._listeners.setdefault(member, []).append(listener)

    def listens(self, kind: RunEventKind) -> bool:
        """True when a listener waits for ``kind`` (so a costly payload is built only then)."""
        return bool(self._listeners.get(kind))

    def emit(self, event: RunEvent) -> None:
        """Call every listener of ``event.kind``; log and swallow their errors."""
        for listener in self._listeners.get(event.kind, ()):
            try:
                listener(event)
            except Exception:  # a listener's bug must not break the run
                log.exception("listener %r for %s raised; ignored", listener, event.kind)
