"""The user's context object on a worker, built by the ``--context`` factory.

The factory (``"pkg.mod:factory"``, called with no arguments) builds what tasks
share in one process: clients, pools, sockets. It is called lazily, at most once
per process that succeeds in calling it: a forked work horse has another process
id, so it builds its own instead of using a copy of its parent's sockets.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from rqdag.errors import RqdagError
from rqdag.shared.model.importing import resolve_path

_UNSET: Any = object()


class ContextHolder:
    """Lazily builds, then keeps, the context object of the current process.

    Call :meth:`get` from the thread that runs the task (jobs run one at a time).
    A factory that raises is called again by the next task that needs it.
    """

    def __init__(self, factory: Callable[[], Any] | None = None, path: str | None = None) -> None:
        self.path = path
        self._factory = factory
        self._pid = 0
        self._value: Any = _UNSET

    def get(self) -> Any:
        """The context of this process (None when the worker has no factory)."""
        if self._factory is None:
            return None
        pid = os.getpid()
        if self._pid != pid or self._value is _UNSET:
            self._value = _UNSET
            self._pid = pid
            try:
                self._value = self._factory()
            except Exception as exc:  # re-raised with the factory named; the task boundary reports it
                raise RqdagError(
                    f"the --context factory {self.path!r} failed: {type(exc).__name__}: {exc}"
                ) from exc
        return self._value


def load_context(path: str | None) -> ContextHolder:
    """A holder for the factory at ``path`` (resolved now, called later); None: no context."""
    if path is None:
        return ContextHolder()
    return ContextHolder(resolve_path(path, what="--context factory"), path)
