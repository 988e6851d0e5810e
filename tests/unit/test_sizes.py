"""Size limits, checked on every module of rqdag/: modules under 300 lines, functions under 50.

A function's size is its body from the first statement after the docstring to
the end of the last one (the signature, decorators and docstring do not count).
Past a limit, split by job (a module with one job, a helper with a name) rather
than raise the limit.
"""

from __future__ import annotations

import ast
from pathlib import Path

import rqdag

PACKAGE = Path(rqdag.__file__).parent
MAX_MODULE_LINES = 300  # a module has fewer lines than this
MAX_FUNCTION_LINES = 50  # a function body has fewer lines than this


def module_lines(source: str) -> int:
    """The number of lines of a module."""
    return len(source.splitlines())


def body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function's body without its docstring (0 for a docstring alone)."""
    body = node.body
    if ast.get_docstring(node, clean=False) is not None:
        body = body[1:]
    if not body:
        return 0
    end = body[-1].end_lineno or body[-1].lineno
    return end - body[0].lineno + 1


def long_functions(source: str, filename: str = "<source>") -> list[str]:
    """``file:line name: N lines`` for each function (nested ones too) at or past the limit."""
    return [
        f"{filename}:{node.lineno} {node.name}: {body_lines(node)} lines"
        for node in ast.walk(ast.parse(source, filename))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and body_lines(node) >= MAX_FUNCTION_LINES
    ]


def modules() -> list[tuple[str, str]]:
    """(path relative to rqdag/, source) of every module of the package."""
    return [(p.relative_to(PACKAGE).as_posix(), p.read_text("utf-8")) for p in sorted(PACKAGE.rglob("*.py"))]


def test_every_module_is_under_the_line_limit() -> None:
    found = [
        f"rqdag/{name}: {module_lines(source)} lines"
        for name, source in modules()
        if module_lines(source) >= MAX_MODULE_LINES
    ]
    assert found == [], f"modules of {MAX_MODULE_LINES} lines or more (split them by job):\n" + "\n".join(
        found
    )


def test_every_function_body_is_under_the_line_limit() -> None:
    found = [line for name, source in modules() for line in long_functions(source, f"rqdag/{name}")]
    assert found == [], f"function bodies of {MAX_FUNCTION_LINES} lines or more:\n" + "\n".join(found)


def test_the_check_counts_a_body_without_its_docstring() -> None:
    statements = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    source = (
        "def long():\n" + statements + "\n"
        "def just_under():\n    '''A docstring\n\n    over lines.'''\n" + statements.split("\n", 1)[1] + "\n"
        "def documented():\n    '''Only a docstring.'''\n"
    )
    assert long_functions(source) == [f"<source>:1 long: {MAX_FUNCTION_LINES} lines"]
    assert module_lines("a = 1\nb = 2\n") == 2
