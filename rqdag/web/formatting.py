"""What the templates show numbers and times as (registered as Jinja filters)."""

from __future__ import annotations

import json
import time
from typing import Any

from rqdag.cli.live import format_duration


def duration(seconds: float | None) -> str:
    """``0.42s``, ``12.3s``, ``3m05s``, ``2h07m``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    return format_duration(seconds)


def ago(stamp: float | None, now: float | None = None) -> str:
    """``42s ago``; ``-`` when unknown."""
    if stamp is None:
        return "-"
    return f"{format_duration((time.time() if now is None else now) - stamp)} ago"


def clock(stamp: float | None) -> str:
    """``2026-11-28 10:00:03 UTC`` (pages turn it into the reader's local time)."""
    if stamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))


def pretty_json(value: Any) -> str:
    """Indented JSON, keys sorted."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def script_json(value: Any) -> str:
    """JSON safe inside a ``<script type="application/json">`` element (no ``<``, ``>``, ``&``)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def thousands(value: int) -> str:
    """``10,000``."""
    return f"{value:,}"


FILTERS = {
    "duration": duration,
    "ago": ago,
    "clock": clock,
    "pretty_json": pretty_json,
    "script_json": script_json,
    "thousands": thousands,
}


def register(env: Any) -> None:
    """Add every filter above to a Jinja environment."""
    env.filters.update(FILTERS)
