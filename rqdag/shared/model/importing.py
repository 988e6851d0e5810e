"""Turning callables into import paths (``"pkg.mod:qualname"``) and back."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from rqdag.errors import ImportPathError


def callable_path(func: object) -> str | None:
    """The import path that resolves back to ``func``, or None if there is none.

    Closures, lambdas and functions defined inside functions have no such path.
    """
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        return None
    path = f"{module}:{qualname}"
    try:
        found = resolve_path(path)
    except ImportPathError:
        return None
    return path if found is func or getattr(found, "__wrapped__", None) is func else None


def resolve_path(path: str, *, what: str = "import path") -> Callable[..., Any]:
    """Import ``"pkg.mod:qualname"`` and return the callable it names.

    Raises :class:`ImportPathError` naming ``what`` and the path on any failure.
    """
    obj = resolve_attribute(path, what=what)
    if not callable(obj):
        raise ImportPathError(f"{what} {path!r} names {type(obj).__name__}, not a callable")
    return obj  # type: ignore[no-any-return]


def resolve_attribute(path: str, *, what: str = "target") -> Any:
    """Import ``"pkg.mod:attr"`` and return the attribute, callable or not."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ImportPathError(f"{what} {path!r} is not of the form 'package.module:attribute'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportPathError(f"{what} {path!r}: cannot import module {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportPathError(
                f"{what} {path!r}: module {module_name!r} has no attribute {attr!r}"
            ) from None
    return obj
