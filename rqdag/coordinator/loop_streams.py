"""The events streams of a driver loop's runs: which run each is, and reading those with news."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis

from rqdag.coordinator.driver import RunDriver
from rqdag.shared.model.vocabulary import EventKind
from rqdag.shared.store.records import text

READ_COUNT = 1_000  # entries per stream and read
RUN_READ_CHUNK = 1_000  # events streams named in one XREAD
CANCEL_EVENT = EventKind.CANCEL.value.encode()
STARTED_EVENT = EventKind.STARTED.value.encode()


class RunStreams:
    """The events streams of the runs a loop holds, read only when they have news."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._drivers: dict[str, RunDriver] = {}  # events stream -> its run's driver
        self.more: set[str] = set()  # streams whose last read was full: read again next round

    def add(self, driver: RunDriver) -> None:
        """Read the stream of ``driver``'s run from now on (from its last event read)."""
        self._drivers[driver.dispatcher.events_key] = driver

    def remove(self, driver: RunDriver) -> None:
        """Stop reading the stream of ``driver``'s run."""
        key = driver.dispatcher.events_key
        self._drivers.pop(key, None)
        self.more.discard(key)

    def all(self) -> set[str]:
        """Every stream held (a sweep reads them all)."""
        return set(self._drivers)

    def __len__(self) -> int:
        return len(self._drivers)

    def positions(self) -> dict[str, bytes]:
        """Every stream held, with the id its next read starts after (for a loop's blocking read)."""
        return {key: driver.dispatcher.last_event_id for key, driver in self._drivers.items()}

    def read(self, keys: Iterable[str]) -> tuple[list[str], list[str]]:
        """Read the streams ``keys`` of held runs, RUN_READ_CHUNK in one XREAD, and feed each
        run its events; the runs to step now, and those asked to cancel."""
        wanted = [key for key in keys if key in self._drivers]
        heard: list[str] = []
        cancelled: list[str] = []
        for start in range(0, len(wanted), RUN_READ_CHUNK):
            chunk = wanted[start : start + RUN_READ_CHUNK]
            streams: dict[Any, Any] = {key: self._drivers[key].dispatcher.last_event_id for key in chunk}
            reply: Any = self._client.xread(streams, count=READ_COUNT)
            for stream, entries in reply or []:
                self.take(text(stream), entries, heard, cancelled)
        return heard, cancelled

    def take(
        self,
        key: str,
        entries: list[tuple[bytes, dict[bytes, bytes]]],
        heard: list[str],
        cancelled: list[str],
    ) -> None:
        """Feed the ``entries`` read from stream ``key`` to its run; note it in ``heard`` when it is
        to be stepped now, and in ``cancelled`` when a cancel was asked of it."""
        driver = self._drivers.get(key)
        if driver is None:
            return
        if len(entries) >= READ_COUNT:
            self.more.add(key)
        driver.dispatcher.feed(entries)
        # A worker starting a task asks nothing of the run: its next step (the
        # task's end, or a timer) reads the news. Any other event steps it now.
        if any(fields.get(b"kind") != STARTED_EVENT for _, fields in entries):
            heard.append(driver.run_id)
        if any(fields.get(b"kind") == CANCEL_EVENT for _, fields in entries):
            cancelled.append(driver.run_id)
