"""The benchmark suite runs end to end in ``--quick`` mode and reports a number for every section.

No timing is asserted: on a shared CI machine only that the suite works is a fact.
Two repetitions (not the suite's three) keep the test short while still running
both orders of the alternating pairs.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO

MEASURED = (
    "throughput",
    "chain",
    "fanin",
    "resume",
    "overhead",
    "memory",
    "manyruns",
    "submit",
    "logs",
    "slots",
)


def _numbers(row: dict[str, Any]) -> list[float]:
    values = []
    for key in ("rqdag", "reference"):
        series = row[key]
        if series is not None and series["median"] is not None:
            values.append(series["median"])
    return values


def _peer_missing(row: dict[str, Any]) -> bool:
    """A row measured against Dramatiq (the bench extra) when Dramatiq is not installed here."""
    missing = importlib.util.find_spec("dramatiq") is None
    return missing and str(row.get("reference_name") or "").startswith("skipped: dramatiq not installed")


@pytest.mark.timeout(200)
def test_quick_suite_reports_every_section(tmp_path: Path) -> None:
    out = tmp_path / "results"
    result_json = tmp_path / "results.json"
    command = [sys.executable, "-m", "bench", "--quick", "--reps", "2"]
    proc = subprocess.run(
        [*command, "--out", str(out), "--json", str(result_json)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=190,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    document = json.loads(result_json.read_text())
    sections = {s["key"]: s for s in document["sections"]}
    assert set(MEASURED) <= set(sections)
    for key in MEASURED:
        rows = sections[key]["rows"]
        assert rows, f"section {key} has no rows"
        for row in rows:
            numbers = _numbers(row)
            if _peer_missing(row):
                assert not numbers, row  # a row against a peer that is not installed says so, no figure
                continue
            assert numbers, f"{key}: {row['measure']} has no number"
            assert all(math.isfinite(n) for n in numbers), row
            if row["unit"] != "k":  # a scaling exponent may be below 0 at --quick sizes (fixed costs)
                assert all(n >= 0 for n in numbers), row
    peers = sections["peers"]
    assert peers["rows"] or peers["skipped"]
    results_md = (out / "RESULTS.md").read_text()
    assert "| # | Measure |" in results_md
    assert "redis-server" in results_md
    assert "| # | Measure |" in proc.stdout
