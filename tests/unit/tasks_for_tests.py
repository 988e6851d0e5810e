"""Importable task functions and conditions, for tests that give them by import path."""

from __future__ import annotations

from typing import Any

from rqdag import TaskContext

NOT_CALLABLE = 42


def path_of(name: str) -> str:
    """The import path ``"module:name"`` of an attribute of this module."""
    return f"{__name__}:{name}"


def answer(ctx: TaskContext) -> int:
    """Return 42."""
    return 42


def add_inputs(ctx: TaskContext) -> int:
    """Sum the data of every dependency."""
    return sum(int(v) for v in ctx.inputs.values())


def describe(ctx: TaskContext) -> dict[str, Any]:
    """Everything a task sees that is JSON: for assertions on the TaskContext."""
    return {
        "run_id": ctx.run_id,
        "task": ctx.task,
        "attempt": ctx.attempt,
        "params": dict(ctx.params),
        "inputs": dict(ctx.inputs),
        "idempotency_key": ctx.idempotency_key,
    }


def explode(ctx: TaskContext) -> None:
    """Always fail."""
    raise RuntimeError(f"boom in {ctx.task}")


def always_false(ctx: TaskContext) -> bool:
    """A condition that is never met."""
    return False


def always_true(ctx: TaskContext) -> bool:
    """A condition that is always met."""
    return True


def param_enabled(ctx: TaskContext) -> bool:
    """A condition read from the run's parameters."""
    return bool(ctx.params.get("enabled"))
