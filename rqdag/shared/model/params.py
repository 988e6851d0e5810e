"""A run's parameters: a JSON object of name to value, checked before anything is stored.

JSON has no NaN or Infinity; orjson would write them as ``null`` and the task
would read a different value from the one submitted, so they are refused here
with the parameter named.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rqdag.errors import EncodeError, RqdagError

MAX_DEPTH = 256  # deeper than orjson encodes: it refuses the value itself


def check_params(params: object) -> dict[str, Any]:
    """``params`` as a plain dict (``None`` is ``{}``); RqdagError naming what is wrong.

    A value that is not a mapping, a name that is not a string, or a NaN or
    infinite number anywhere inside a value is refused.
    """
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise RqdagError(
            f"params must be a mapping of parameter name to JSON value, got {type(params).__name__}"
        )
    out: dict[str, Any] = {}
    for name, value in params.items():
        if not isinstance(name, str):
            raise RqdagError(f"params: parameter names must be strings, got {name!r}")
        where = non_finite_number(value)
        if where is not None:
            path, number = where
            raise EncodeError(f"params: parameter '{name}{path}' is {number!r}: JSON has no NaN or Infinity")
        out[name] = value
    return out


def non_finite_number(value: Any) -> tuple[str, float] | None:
    """The path (``""``, ``"[2]"``, ``".limit"``) and value of the first NaN or infinity in ``value``."""
    stack: list[tuple[str, Any, int]] = [("", value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return path, item
        if depth >= MAX_DEPTH:
            continue
        if isinstance(item, Mapping):
            stack.extend((f"{path}.{key}", child, depth + 1) for key, child in reversed(list(item.items())))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{i}]", child, depth + 1) for i, child in reversed(list(enumerate(item))))
    return None
