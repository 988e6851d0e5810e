"""A run's params and run id at the edges of the in-process API: clear RqdagErrors, nothing run."""

from __future__ import annotations

import math
from typing import Any

import click
import pytest

from rqdag import RqdagError, Task, TaskRunnerBuilder
from rqdag.cli.common import parse_params
from rqdag.errors import EncodeError
from rqdag.shared.model.params import check_params, non_finite_number

from . import tasks_for_tests


def tasks() -> list[Task]:
    return [Task("d", tasks_for_tests.describe)]


@pytest.mark.parametrize("params", [[1, 2], [("date", "2026-11-28")], "date", 3.5])
def test_execute_refuses_params_that_are_not_a_mapping(params: Any) -> None:
    runner = TaskRunnerBuilder().build()
    with pytest.raises(RqdagError, match=r"^params must be a mapping of parameter name to JSON value, got"):
        runner.execute(tasks(), params=params)
    assert runner.snapshot() == {}


def test_execute_refuses_nan_in_params_naming_it() -> None:
    with pytest.raises(
        EncodeError, match=r"params: parameter 'window\[1\]' is nan: JSON has no NaN or Infinity"
    ):
        TaskRunnerBuilder().build().execute(tasks(), params={"window": [0.5, math.nan]})


def test_with_run_id_refuses_an_empty_run_id() -> None:
    with pytest.raises(RqdagError, match="run id is empty"):
        TaskRunnerBuilder().with_run_id("")


def test_check_params_keeps_a_good_mapping_and_refuses_a_non_string_name() -> None:
    assert check_params(None) == {}
    assert check_params({"date": "2026-11-28", "n": [1, {"x": 2.5}]}) == {
        "date": "2026-11-28",
        "n": [1, {"x": 2.5}],
    }
    with pytest.raises(RqdagError, match=r"params: parameter names must be strings, got 1"):
        check_params({1: "a"})


def test_non_finite_number_finds_the_first_one_with_its_path() -> None:
    assert non_finite_number({"a": [1, 2, {"b": (3, math.inf)}]}) == (".a[2].b[1]", math.inf)
    assert non_finite_number([1, "nan", None, True]) is None
    deep: list[Any] = []
    deep.append(deep)  # a cycle: the walk stops at the depth orjson would refuse anyway
    assert non_finite_number(deep) is None


def test_parse_params_refuses_nan_and_keeps_json_and_text() -> None:
    assert parse_params(("n=3", "s=hello", 'q="NaN"', "w=nan", 'o={"a": [1]}')) == {
        "n": 3,
        "s": "hello",
        "q": "NaN",
        "w": "nan",
        "o": {"a": [1]},
    }
    with pytest.raises(click.BadParameter, match=r"parameter 'n' is nan, and JSON has no NaN or Infinity"):
        parse_params(("n=NaN",))
