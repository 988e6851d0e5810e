"""Durations (``7d``, ``12h``...) and a workflow's retention."""

from __future__ import annotations

import math

import pytest

from rqdag import Workflow
from rqdag.errors import RqdagError, WorkflowDefinitionError
from rqdag.shared.model.duration import format_duration_spec, parse_duration
from rqdag.shared.store.retention import DEFAULT_RETENTION_S, retention_of


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("45s", 45.0),
        ("30m", 1800.0),
        ("12h", 43200.0),
        ("7d", 604800.0),
        ("2w", 1209600.0),
        ("1.5h", 5400.0),
        (" 7D ", 604800.0),
        ("0", 0.0),
        (3600, 3600.0),
        (0.5, 0.5),
    ],
)
def test_durations_parse(text: str | float, seconds: float) -> None:
    assert parse_duration(text, what="x") == seconds


@pytest.mark.parametrize("bad", ["", "soon", "-3d", "7 days", "1e3", math.inf, -1, float("nan"), True])
def test_bad_durations_are_refused_naming_the_field(bad: str | float) -> None:
    with pytest.raises(RqdagError, match=r"^retention: "):
        parse_duration(bad, what="retention")


def test_durations_format_back() -> None:
    assert [format_duration_spec(s) for s in (604800, 86400 * 3, 7200, 90, 0.5)] == [
        "7d",
        "3d",
        "2h",
        "90s",
        "0.5s",
    ]


def test_workflow_retention() -> None:
    assert Workflow("w").retention_s is None
    assert Workflow("w", retention="30d").retention_s == 30 * 86400
    assert Workflow("w", retention=0).retention_s == 0
    with pytest.raises(WorkflowDefinitionError, match="workflow 'w': retention"):
        Workflow("w", retention="forever")


def test_stored_retention_falls_back_to_the_default() -> None:
    assert retention_of(b"", DEFAULT_RETENTION_S) == DEFAULT_RETENTION_S
    assert retention_of(None, 10) == 10
    assert retention_of(b"garbage", 10) == 10
    assert retention_of(b"0", 10) == 0
    assert retention_of(b"7200.0", 10) == 7200
