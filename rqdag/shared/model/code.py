"""The identity of a task function's code: what lets a resume tell changed code from unchanged.

A hash of what the function does: its bytecode and exception table, its
constants (nested functions, lambdas and comprehensions included, recursively),
the global and attribute names it uses, its argument counts, flags and
defaults. Not its line numbers, file, local variable names or docstring: moving
a function, editing a comment or rewording a docstring is not a change. The
functions it calls are not followed (a changed helper is seen only through a
changed ``version=``).

The identity is stable across processes and runs of one Python version (no
``id()``, no ``hash()`` of objects; sets of constants are sorted). Bytecode
differs between Python versions, so an identity starts with the interpreter's
tag (``cpython-311:...``) and two of different tags are not compared.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import sys
from collections.abc import Callable
from types import CodeType
from typing import Any, Literal

CodeComparison = Literal["same", "changed", "unknown"]

VERSION_PREFIX = "version:"
_TAG = sys.implementation.cache_tag or sys.implementation.name
_DIGEST_CHARS = 16
# 3.14 marks a docstring with a flag (consts[0] is then the docstring); older versions keep a
# docstring, or None in its place, as consts[0] of every function.
_CO_HAS_DOCSTRING = getattr(inspect, "CO_HAS_DOCSTRING", 0)
_FUNCTION_FLAGS = inspect.CO_OPTIMIZED | inspect.CO_NEWLOCALS
_MAX_WRAPPERS = 100  # a chain of __wrapped__ longer than this is a loop


def code_identity(func: object) -> str | None:
    """``"<python tag>:<digest>"`` of ``func``'s code, or None when it has no Python code.

    Decorated functions are followed through ``__wrapped__``: the wrappers' and
    the wrapped function's code all count.
    """
    parts: list[bytes] = []
    target: object = func
    for _ in range(_MAX_WRAPPERS):
        if target is None:
            break
        function = getattr(target, "__func__", target)  # a bound method: its function
        code = getattr(function, "__code__", None)
        if not isinstance(code, CodeType):
            return None
        parts.append(_code_digest(code))
        parts.append(_encode(getattr(function, "__defaults__", None)))
        parts.append(_encode(_sorted_items(getattr(function, "__kwdefaults__", None))))
        target = getattr(target, "__wrapped__", None)
    digest = hashlib.sha256(b"".join(parts)).hexdigest()[:_DIGEST_CHARS]
    return f"{_TAG}:{digest}"


def version_identity(version: str) -> str:
    """The code part of a task whose author gave ``version=``: the version, not the code."""
    return f"{VERSION_PREFIX}{version}"


def compare_code(old: str | None, new: str | None) -> CodeComparison:
    """Whether two code identities say the code changed.

    ``unknown`` when either is missing, or both are hashes of different Python
    versions: rqdag cannot tell, and does not claim a change it cannot show.
    """
    if old == new:
        return "same"
    if old is None or new is None:
        return "unknown"
    versioned = old.startswith(VERSION_PREFIX) or new.startswith(VERSION_PREFIX)
    if not versioned and old.partition(":")[0] != new.partition(":")[0]:
        return "unknown"
    return "changed"


def python_tag(identity: str) -> str:
    """The Python tag of a hashed identity (``cpython-311``), or ``""`` for a version."""
    return "" if identity.startswith(VERSION_PREFIX) else identity.partition(":")[0]


@functools.lru_cache(maxsize=4096)
def _code_digest(code: CodeType) -> bytes:
    """The digest of one code object (equal code objects are equal here too: safe to cache)."""
    flags = code.co_flags & ~_CO_HAS_DOCSTRING
    consts = list(code.co_consts)
    if consts and _has_docstring(code):
        if _CO_HAS_DOCSTRING:
            consts.pop(0)
        else:
            consts[0] = None  # what stands there when a function has no docstring
    fields = (
        b"%d,%d,%d,%d" % (code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, flags),
        code.co_code,
        getattr(code, "co_exceptiontable", b""),
        _encode(tuple(consts)),
        _encode(code.co_names),
    )
    return hashlib.sha256(b"".join(_framed(f) for f in fields)).digest()


def _has_docstring(code: CodeType) -> bool:
    if _CO_HAS_DOCSTRING:
        return bool(code.co_flags & _CO_HAS_DOCSTRING)
    is_function = code.co_flags & _FUNCTION_FLAGS == _FUNCTION_FLAGS
    # lambdas and comprehensions (``<lambda>``, ``<listcomp>``) have no docstring
    return is_function and not code.co_name.startswith("<") and isinstance(code.co_consts[0], str)


def _sorted_items(mapping: object) -> tuple[object, ...] | None:
    if not isinstance(mapping, dict):
        return None
    return tuple((key, mapping[key]) for key in sorted(mapping, key=str))


def _framed(data: bytes) -> bytes:
    return b"%d:" % len(data) + data


def _encode(value: object) -> bytes:
    """A deterministic encoding of a constant (the kinds a code object holds, and defaults)."""
    scalar = _SCALARS.get(type(value))
    if scalar is not None:
        return scalar(value)
    if isinstance(value, tuple):
        return b"(" + b"".join(_encode(item) for item in value) + b")"
    if isinstance(value, frozenset):
        return b"{" + b"".join(sorted(_encode(item) for item in value)) + b"}"
    if isinstance(value, CodeType):
        return b"C" + _code_digest(value)
    if isinstance(value, slice):
        return b":" + _encode((value.start, value.stop, value.step))
    # An object (a default argument): its type only, never its repr (which may hold an address).
    kind = type(value)
    return b"?" + _framed(f"{kind.__module__}.{kind.__qualname__}".encode())


_SCALARS: dict[type, Callable[[Any], bytes]] = {
    type(None): lambda _: b"N",
    type(Ellipsis): lambda _: b"E",
    bool: lambda v: b"T" if v else b"F",
    int: lambda v: _framed(b"i%d" % v),
    float: lambda v: _framed(b"f" + v.hex().encode()),
    complex: lambda v: _framed(b"c" + v.real.hex().encode() + b"," + v.imag.hex().encode()),
    str: lambda v: b"s" + _framed(v.encode("utf-8", "surrogatepass")),
    bytes: lambda v: b"b" + _framed(v),
}
