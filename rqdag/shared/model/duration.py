"""Durations as people write them: ``90``, ``45s``, ``30m``, ``12h``, ``7d``, ``2w``."""

from __future__ import annotations

import math
import re

from rqdag.errors import RqdagError

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)


def parse_duration(value: str | float, *, what: str) -> float:
    """Seconds from a number of seconds or a text such as ``"7d"``; ``what`` names it in errors.

    A negative, infinite or unreadable value raises :class:`RqdagError`.
    """
    if isinstance(value, bool):
        raise RqdagError(f"{what}: expected a duration such as 3600, '12h' or '7d', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * UNITS[(match.group(2) or "s").lower()]
    else:
        raise RqdagError(f"{what}: expected a duration such as 3600, '12h' or '7d', got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise RqdagError(f"{what}: a duration must be a finite number of seconds >= 0, got {value!r}")
    return seconds


def format_duration_spec(seconds: float) -> str:
    """The shortest exact spelling of ``seconds`` in days, hours, minutes or seconds (``604800``: ``7d``)."""
    for unit in ("d", "h", "m"):
        size = UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
