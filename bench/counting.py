"""Counting Redis round trips and commands on the client side.

A round trip is one write of a request followed by waiting for its replies:
redis-py's ``send_packed_command``, called once per plain command and once per
pipeline or MULTI/EXEC (however many commands it holds). Commands are counted
where redis-py packs them (``send_command`` and ``pack_commands``), so a pipeline
of 50 commands is 1 round trip and 50 commands.

Two ways to count:

- :func:`counting_connection_class`: a ``redis.Connection`` subclass for one
  client (the bench's in-process coordinator or enqueuer);
- :func:`install`: every connection of this process (a worker subprocess), with
  the totals mirrored into a small file the bench reads while the worker runs.
"""

from __future__ import annotations

import mmap
import struct
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import redis
from redis.connection import AbstractConnection

_LAYOUT = struct.Struct("<QQ")


class Tally:
    """Round trips and commands, thread-safe; optionally mirrored into a file."""

    def __init__(self, path: Path | None = None) -> None:
        self.round_trips = 0
        self.commands = 0
        self._lock = threading.Lock()
        self._map: mmap.mmap | None = None
        if path is not None:
            path.write_bytes(b"\0" * _LAYOUT.size)
            with path.open("r+b") as handle:
                self._map = mmap.mmap(handle.fileno(), _LAYOUT.size)

    def add(self, round_trips: int = 0, commands: int = 0) -> None:
        """Count ``round_trips`` and ``commands`` more."""
        with self._lock:
            self.round_trips += round_trips
            self.commands += commands
            if self._map is not None:
                _LAYOUT.pack_into(self._map, 0, self.round_trips, self.commands)

    def snapshot(self) -> tuple[int, int]:
        """``(round_trips, commands)`` so far."""
        with self._lock:
            return self.round_trips, self.commands


def read_tally_file(path: Path) -> tuple[int, int]:
    """``(round_trips, commands)`` a process counting with :func:`install` has written."""
    raw = path.read_bytes()
    if len(raw) < _LAYOUT.size:
        return 0, 0
    round_trips, commands = _LAYOUT.unpack_from(raw, 0)
    return int(round_trips), int(commands)


def counting_connection_class(tally: Tally) -> type[redis.Connection]:
    """A TCP connection class whose round trips and commands go to ``tally``."""

    class CountingConnection(redis.Connection):
        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            tally.add(round_trips=1)
            super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]

        def send_command(self, *args: Any, **kwargs: Any) -> None:
            tally.add(commands=1)
            super().send_command(*args, **kwargs)  # type: ignore[no-untyped-call]

        def pack_commands(self, commands: Iterable[Any]) -> list[bytes | memoryview]:
            listed = list(commands)
            tally.add(commands=len(listed))
            packed: list[bytes | memoryview] = super().pack_commands(listed)  # type: ignore[no-untyped-call]
            return packed

    return CountingConnection


def install(tally: Tally) -> None:
    """Count every Redis connection of this process into ``tally`` (worker processes only)."""
    send_packed = AbstractConnection.send_packed_command
    send_command = AbstractConnection.send_command
    pack_commands = AbstractConnection.pack_commands

    def counted_send_packed(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        tally.add(round_trips=1)
        send_packed(self, command, check_health)  # type: ignore[no-untyped-call]

    def counted_send_command(self: AbstractConnection, *args: Any, **kwargs: Any) -> None:
        tally.add(commands=1)
        send_command(self, *args, **kwargs)  # type: ignore[no-untyped-call]

    def counted_pack_commands(self: AbstractConnection, commands: Iterable[Any]) -> Any:
        listed = list(commands)
        tally.add(commands=len(listed))
        return pack_commands(self, listed)  # type: ignore[no-untyped-call]

    AbstractConnection.send_packed_command = counted_send_packed  # type: ignore[method-assign]
    AbstractConnection.send_command = counted_send_command  # type: ignore[method-assign]
    AbstractConnection.pack_commands = counted_pack_commands  # type: ignore[method-assign]
