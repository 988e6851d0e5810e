"""The code part of a task's definition hash: what counts as a change of code, and what does not."""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from rqdag import Task, Workflow
from rqdag.errors import WorkflowDefinitionError
from rqdag.shared.model.code import code_identity, compare_code, python_tag, version_identity

REPO = Path(__file__).resolve().parents[2]

BASE = '''
import json

def helper(x):
    return x

def other(x):
    return x

def task(ctx):
    """Sums what it is given."""
    rows = [r for r in ctx["rows"] if r in {1, 2, 3, "a"}]
    scale = lambda v: v * 2
    return json.dumps({"total": helper(sum(map(scale, rows))), "unit": "kg"})
'''

# the same code, moved down, with comments, blank lines and another docstring
MOVED = '''
"""A module with more at the top."""

import json

# a comment


def helper(x):
    return x

def other(x):
    return x


def task(ctx):
    """Adds the rows up.

    Reworded, and longer.
    """
    # keep the known rows only
    rows = [r for r in ctx["rows"] if r in {1, 2, 3, "a"}]  # a trailing comment
    scale = lambda v: v * 2

    return json.dumps({"total": helper(sum(map(scale, rows))), "unit": "kg"})
'''


def load(tmp_path: Path, name: str, source: str) -> ModuleType:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def identity_of(tmp_path: Path, name: str, source: str) -> str:
    found = code_identity(load(tmp_path, name, source).task)
    assert found is not None
    return found


def test_the_same_code_elsewhere_with_other_lines_comments_and_docstring_is_the_same(tmp_path: Path) -> None:
    first = identity_of(tmp_path, "code_base", BASE)
    assert first == identity_of(tmp_path, "code_moved", MOVED)
    assert first.startswith(f"{sys.implementation.cache_tag}:")
    no_doc = BASE.replace('    """Sums what it is given."""\n', "")
    assert identity_of(tmp_path, "code_nodoc", no_doc) == first, "a docstring is not code"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"unit": "kg"', '"unit": "g"'),  # a constant
        ("v * 2", "v * 3"),  # a nested lambda
        ('{1, 2, 3, "a"}', '{1, 2, 4, "a"}'),  # a frozenset constant
        ("helper(sum", "other(sum"),  # a called name
        ("json.dumps", "json.loads"),  # an attribute
        ("if r in", "if r not in"),  # the bytecode itself
    ],
)
def test_a_change_of_what_the_code_does_is_a_change(tmp_path: Path, old: str, new: str) -> None:
    assert old in BASE
    changed = BASE.replace(old, new)
    assert identity_of(tmp_path, "code_a", BASE) != identity_of(tmp_path, "code_b", changed)


def test_defaults_and_decorated_functions_count(tmp_path: Path) -> None:
    one = load(tmp_path, "code_d1", "def task(ctx, n=1):\n    return n\n").task
    two = load(tmp_path, "code_d2", "def task(ctx, n=2):\n    return n\n").task
    assert code_identity(one) != code_identity(two)

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(ctx: Any) -> Any:
            return func(ctx)

        return wrapper

    assert code_identity(wrap(one)) != code_identity(wrap(two)), "the wrapped function's code counts"
    assert code_identity(len) is None, "a builtin has no Python code"


def test_the_identity_is_the_same_in_other_processes(tmp_path: Path) -> None:
    (tmp_path / "code_stable.py").write_text(BASE)
    script = "import code_stable; from rqdag.shared.model.code import code_identity; "
    script += "print(code_identity(code_stable.task))"
    seen = set()
    for seed in ("1", "2", "random"):  # string hashes (and so set order) differ per process
        path = os.pathsep.join([str(tmp_path), str(REPO)])
        env = {**os.environ, "PYTHONPATH": path, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True
        )
        seen.add(done.stdout.strip())
    assert seen == {identity_of(tmp_path, "code_stable_here", BASE)}


def test_a_version_stands_for_the_code(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    one = load(tmp_path / "old", "code_v", BASE).task  # one module, before and after an edit
    two = load(tmp_path / "new", "code_v", BASE.replace("v * 2", "v * 3")).task
    assert Task("t", one).definition_hash() != Task("t", two).definition_hash()
    assert Task("t", one, version="2").definition_hash() == Task("t", two, version="2").definition_hash()
    assert Task("t", one, version="2").definition_hash() != Task("t", one, version="3").definition_hash()
    assert Task("t", one, version="2").code_id == version_identity("2") == "version:2"
    wf = Workflow("w")
    wf.task(name="decorated", version="7")(one)
    assert wf.tasks[0].version == "7" and wf.tasks[0].code_id == "version:7"
    with pytest.raises(WorkflowDefinitionError, match="task 't': version must be a non-empty string"):
        Task("t", one, version="")


def test_code_comparison_claims_no_change_it_cannot_show() -> None:
    assert compare_code("cpython-311:aa", "cpython-311:aa") == "same"
    assert compare_code("cpython-311:aa", "cpython-311:bb") == "changed"
    assert compare_code("cpython-311:aa", "cpython-312:bb") == "unknown", "bytecode of two Pythons"
    assert compare_code(None, "cpython-311:aa") == "unknown"
    assert compare_code("version:1", "cpython-311:aa") == "changed"
    assert compare_code("version:1", "version:2") == "changed"
    assert python_tag("cpython-311:aa") == "cpython-311" and python_tag("version:1") == ""
