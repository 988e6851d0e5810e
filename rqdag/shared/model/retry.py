"""Retry: how often and how soon a failed task runs again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from rqdag.errors import WorkflowDefinitionError

Backoff = Literal["fixed", "exponential"]


@dataclass(frozen=True, slots=True)
class Retry:
    """How often and how soon a failed task runs again.

    ``attempts`` counts retries after the first run: ``attempts=2`` means at most
    three runs. ``backoff="exponential"`` doubles the delay after every retry.
    """

    attempts: int = 0
    delay_s: float = 0.0
    backoff: Backoff = "fixed"
    max_delay_s: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 0:
            raise WorkflowDefinitionError(f"retry.attempts must be an integer >= 0, got {self.attempts!r}")
        if self.delay_s < 0:
            raise WorkflowDefinitionError(f"retry.delay_s must be >= 0, got {self.delay_s!r}")
        if self.backoff not in ("fixed", "exponential"):
            raise WorkflowDefinitionError(
                f"retry.backoff must be 'fixed' or 'exponential', got {self.backoff!r}"
            )

    def delay_before(self, retry_number: int) -> float:
        """Seconds to wait before retry number ``retry_number`` (1 for the first retry)."""
        delay = self.delay_s
        if self.backoff == "exponential":
            delay = self.delay_s * (2 ** (retry_number - 1))
        if self.max_delay_s is not None:
            delay = min(delay, self.max_delay_s)
        return delay

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "attempts": self.attempts,
            "delay_s": self.delay_s,
            "backoff": self.backoff,
            "max_delay_s": self.max_delay_s,
        }
