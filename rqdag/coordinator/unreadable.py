"""Dispatch entries overwritten with garbage: each reported once, the attempt it hides set aside.

No worker can start, beat or finish an attempt whose entry is unreadable any
more (each script refuses such an entry), so it is set aside at once, named in
an error line. It is sent again if it never started (``unstarted``); if it may
have started it is ``lost``, so an at-most-once task is never run again. What
the entry said is known from its last readable form (:class:`Known`: kept from
dispatch, the watchdog's checks and ``started`` events) and from the events not
yet applied (``news``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from typing import NamedTuple

from rqdag.coordinator.dispatch import Completion, CompletionKind
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import AttemptState, EventKind
from rqdag.shared.store.records import DispatchEntry

log = logging.getLogger("rqdag.coordinator")


class Known(NamedTuple):
    """What the watchdog keeps of an attempt in flight (little: a run may have many)."""

    token: str
    attempt: int
    started: bool  # its entry was seen past 'queued'


def known_of(entry: DispatchEntry) -> Known:
    """The part of a readable dispatch entry kept in case it turns to garbage."""
    return Known(entry.token, entry.attempt, entry.state is not AttemptState.QUEUED)


class UnreadableEntries:
    """The garbage found in a run's dispatch hash, and what the watchdog does about it."""

    def __init__(self, news: Callable[[str], Collection[str]], reported: Collection[str] = ()) -> None:
        """``news(token)``: the kinds of the events about that attempt read but not yet
        applied; ``reported``: tasks whose garbage the run's load reported already."""
        self._news = news
        # task -> the garbage already dealt with (None: reported at load, whatever it was)
        self._garbage: dict[str, bytes | str | None] = dict.fromkeys(reported)

    def set_aside(
        self, unreadable: Mapping[str, tuple[bytes | str, str]], known: dict[str, Known]
    ) -> list[Completion]:
        """Garbage not seen before: reported once; the attempt it hides (in ``known``, dropped) is voided."""
        self._garbage = {n: g for n, g in self._garbage.items() if n in unreadable}
        out: list[Completion] = []
        for name, (raw, problem) in unreadable.items():
            if name in self._garbage and self._garbage[name] in (None, raw):
                continue
            seen = known.get(name)
            if seen is None:
                self._garbage[name] = raw
                log.error(
                    "%s; no attempt of task '%s' is in flight here: the entry is left as it is", problem, name
                )
                continue
            news = self._news(seen.token)
            if any(kind != EventKind.STARTED for kind in news):
                continue  # its worker answered before the garbage came: that answer settles it
            self._garbage[name] = raw
            del known[name]
            started = seen.started or EventKind.STARTED in news
            out.append(self._unreadable(name, seen, problem, started=started))
        return out

    def _unreadable(self, name: str, entry: Known, problem: str, *, started: bool) -> Completion:
        attempt = f"attempt {entry.attempt} of task '{name}'"
        if not started:
            log.error("%s; %s never started: it is sent again", problem, attempt)
            result = TaskResult.failure(
                f"{attempt} was set aside unstarted: its dispatch entry is unreadable"
            )
            return Completion(name, entry.token, result, CompletionKind.UNSTARTED)
        log.error(
            "%s; %s may have started: it counts as lost (an at-most-once task is not run again)",
            problem,
            attempt,
        )
        result = TaskResult.failure(f"{attempt} lost: its dispatch entry became unreadable ({problem})")
        return Completion(name, entry.token, result, CompletionKind.LOST)
