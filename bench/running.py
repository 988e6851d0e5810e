"""The ``with`` form of what the bench starts and stops: servers, worker pools, peer workers."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Running:
    """Something with ``start()`` and ``stop()``: ``with thing:`` starts it and stops it again."""

    def start(self) -> None:
        """Start it (each kind says how)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop it (each kind says how)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
