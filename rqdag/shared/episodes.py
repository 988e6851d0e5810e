"""Episode: log a condition that lasts once per episode, not once per retry.

A loop that retries every second while Redis is down would write the same line
every second for as long as the outage lasts. An :class:`Episode` logs when the
condition starts, when it changes (another kind of failure) and when it ends,
with how long it lasted and how often it was seen, and stays quiet in between::

    unreachable = Episode(log, "Redis unreachable", "Redis reachable again")
    while running:
        try:
            step()
        except redis.ConnectionError as exc:
            unreachable.seen(exc)
        else:
            unreachable.over()

writes ``Redis unreachable: Error 111 connecting to ...`` once, then
``Redis reachable again after 12.3 s (12 failed attempts)``. An episode may be
fed from several threads (a service loop and its drivers).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


def describe(reason: object) -> str:
    """``reason`` as one line; an exception with no text is named by its type."""
    text = " ".join(str(reason).split())
    if isinstance(reason, BaseException) and not text:
        return type(reason).__name__
    return text


class Episode:
    """One condition that comes and goes: logged at its start, its changes and its end.

    ``started`` heads the line of the start (``"<started>: <reason>"``) and of a
    change; ``ended`` heads the line of the end. ``remind_every_s`` (if given)
    repeats the line while the condition lasts that long, so a reader of a
    long log sees it still holds. ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        logger: logging.Logger,
        started: str,
        ended: str,
        *,
        level: int = logging.WARNING,
        remind_every_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._started = started
        self._ended = ended
        self._level = level
        self._remind_every_s = remind_every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None
        self._kind = ""
        self._reason = ""
        self._logged_at = 0.0
        self.count = 0  # times seen in the current episode (or the last one, once over)

    @property
    def active(self) -> bool:
        """True from the first :meth:`seen` until :meth:`over`."""
        return self._since is not None

    def seen(self, reason: object, *, kind: str | None = None) -> bool:
        """The condition holds (again); logs only at its start, a change or a reminder.

        ``kind`` tells a change from a repeat (default: the reason's text): pass the
        exception's type when its text varies from one attempt to the next.
        Returns True when a line was written.
        """
        text = describe(reason)
        kind = text if kind is None else kind
        with self._lock:
            now = self._clock()
            if self._since is None:
                self._since, self._kind, self._reason, self.count = now, kind, text, 1
                return self._write(now, "%s: %s", self._started, text)
            self.count += 1
            if kind != self._kind:
                before, self._kind, self._reason = self._reason, kind, text
                return self._write(now, "%s: %s (before: %s)", self._started, text, before)
            self._reason = text
            if self._remind_every_s is not None and now - self._logged_at >= self._remind_every_s:
                lasted = now - self._since
                return self._write(
                    now, "%s for %.1f s now (%s): %s", self._started, lasted, self._tries(), text
                )
            return False

    def over(self) -> bool:
        """The condition no longer holds; logs the end of an episode once. True if one ended."""
        with self._lock:
            if self._since is None:
                return False
            now = self._clock()
            lasted, self._since = now - self._since, None
            return self._write(now, "%s after %.1f s (%s)", self._ended, lasted, self._tries())

    def _tries(self) -> str:
        return f"{self.count} failed attempt{'' if self.count == 1 else 's'}"

    def _write(self, now: float, message: str, *args: object) -> bool:
        self._logged_at = now
        self._log.log(self._level, message, *args)
        return True
