"""The ledger: a JSON-lines file that test tasks append one line to per attempt.

Tasks find it through ``$RQDAG_TEST_LEDGER`` (the chaos tasks through their own
variable, see :mod:`tests.chaos.chaos_flow`), so a test can tell from the tasks'
own words what ran, how often and where.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

LEDGER_ENV = "RQDAG_TEST_LEDGER"


def read_ledger(path: Path) -> list[dict[str, Any]]:
    """Every line of the ledger at ``path`` (none when there is no file yet)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_ledger_noting_problems(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The ledger's lines, and a note for each line that is not JSON (a writer killed mid-line)."""
    if not path.exists():
        return [], []
    lines: list[dict[str, Any]] = []
    problems: list[str] = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        if not raw.strip():
            continue
        try:
            lines.append(json.loads(raw))
        except json.JSONDecodeError as exc:
            problems.append(f"ledger line {number} is not JSON ({exc}): {raw[:120]!r}")
    return lines, problems


def successes_ran_once(lines: Sequence[dict[str, Any]], succeeded: Sequence[str]) -> dict[str, int]:
    """Tasks among ``succeeded`` that the ledger does not show running exactly once: {task: runs}."""
    counts: dict[str, int] = {}
    for line in lines:
        counts[line["task"]] = counts.get(line["task"], 0) + 1
    return {t: counts.get(t, 0) for t in succeeded if counts.get(t, 0) != 1}
