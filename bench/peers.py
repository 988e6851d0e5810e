"""Section 6, peers (optional): Celery and Dramatiq on the same workloads.

The suite never installs them. When neither is importable the section is
skipped with that reason; the suite has no runner for them yet either, so when
they are installed the section says so instead of guessing at numbers.
"""

from __future__ import annotations

import importlib.util

PEERS = ("celery", "dramatiq")


def skip_reason() -> str:
    """Why section 6 has no rows."""
    missing = [name for name in PEERS if importlib.util.find_spec(name) is None]
    present = [name for name in PEERS if name not in missing]
    parts = []
    if missing:
        parts.append(f"{' and '.join(missing)} not installed (the suite does not install peers)")
    if present:
        parts.append(f"{' and '.join(present)} installed, but this suite has no runner for them yet")
    return "; ".join(parts)
