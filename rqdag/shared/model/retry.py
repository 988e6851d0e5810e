"""The retry policy of a task: how often, how soon, and after which exceptions (:class:`Retry`)."""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, cast

from rqdag.errors import WorkflowDefinitionError

Backoff = Literal["fixed", "exponential"]
ExceptionTypes = type[BaseException] | str | Iterable[type[BaseException] | str]
"""What ``Retry(on=...)`` takes: exception types, or their names, one or several."""

_QUALIFIED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def exception_name(item: type[BaseException] | str) -> str:
    """``"module:Qualname"`` of an exception type, or of a name given as ``"module:Qualname"``
    or as a built-in's bare name (``"ConnectionRefusedError"``); WorkflowDefinitionError otherwise."""
    if isinstance(item, type) and issubclass(item, BaseException):
        return f"{item.__module__}:{item.__qualname__}"
    if isinstance(item, str):
        if ":" not in item:
            builtin = getattr(builtins, item, None)
            if isinstance(builtin, type) and issubclass(builtin, BaseException):
                return f"builtins:{item}"
        elif _QUALIFIED.match(item):
            return item
    raise WorkflowDefinitionError(
        f"retry.on: {item!r} is not an exception type or the name of one ('package.module:Name', "
        "or a built-in's name such as 'ConnectionRefusedError')"
    )


def raised_names(raised: type[BaseException]) -> set[str]:
    """The names of ``raised`` and of every class it derives from (what isinstance checks)."""
    return {f"{cls.__module__}:{cls.__qualname__}" for cls in raised.__mro__}


def _names(on: Any) -> tuple[str, ...]:
    items = [on] if isinstance(on, str | type) else list(on)
    return tuple(dict.fromkeys(exception_name(item) for item in items))


@dataclass(frozen=True, slots=True)
class Retry:
    """How often and how soon a failed task runs again, and after which exceptions.

    ``attempts`` counts retries after the first run: ``attempts=2`` means at most
    three runs. ``backoff="exponential"`` doubles the delay after every retry.
    ``on`` lists the exception types after which a retry may follow (given as types
    or as their names, kept as ``"module:Qualname"``): a failure by any other
    exception, or without one, is final. With no ``on``, every failure may be
    retried. An at-most-once task must list them: for it they are the exceptions
    that mean "nothing happened" (say, ``ConnectionRefusedError``).
    """

    attempts: int = 0
    delay_s: float = 0.0
    backoff: Backoff = "fixed"
    max_delay_s: float | None = None
    on: ExceptionTypes = ()

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 0:
            raise WorkflowDefinitionError(f"retry.attempts must be an integer >= 0, got {self.attempts!r}")
        if self.delay_s < 0:
            raise WorkflowDefinitionError(f"retry.delay_s must be >= 0, got {self.delay_s!r}")
        if self.backoff not in ("fixed", "exponential"):
            raise WorkflowDefinitionError(
                f"retry.backoff must be 'fixed' or 'exponential', got {self.backoff!r}"
            )
        try:
            names = _names(self.on)
        except TypeError:
            raise WorkflowDefinitionError(
                f"retry.on must be exception types or their names, got {self.on!r}"
            ) from None
        object.__setattr__(self, "on", names)

    @property
    def on_names(self) -> tuple[str, ...]:
        """``on`` as it is kept: ``"module:Qualname"`` of each listed type."""
        return cast(tuple[str, ...], self.on)

    def allows(self, raised: type[BaseException] | None) -> bool:
        """Whether a failure that raised ``raised`` (None: no exception) may be retried."""
        names = self.on_names
        if not names:
            return True
        return raised is not None and not raised_names(raised).isdisjoint(names)

    def delay_before(self, retry_number: int) -> float:
        """Seconds to wait before retry number ``retry_number`` (1 for the first retry)."""
        delay = self.delay_s
        if self.backoff == "exponential":
            delay = self.delay_s * (2 ** (retry_number - 1))
        if self.max_delay_s is not None:
            delay = min(delay, self.max_delay_s)
        return delay

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (``on`` only when it lists something, so older hashes hold)."""
        out: dict[str, Any] = {
            "attempts": self.attempts,
            "delay_s": self.delay_s,
            "backoff": self.backoff,
            "max_delay_s": self.max_delay_s,
        }
        if self.on_names:
            out["on"] = list(self.on_names)
        return out
