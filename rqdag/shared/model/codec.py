"""The one home of JSON encoding (orjson): results, snapshots, definitions, messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from rqdag.errors import DecodeError, EncodeError, SnapshotError
from rqdag.shared.model.result import TaskResult

SNAPSHOT_VERSION = 1


def dumps(value: Any, *, what: str) -> bytes:
    """Encode ``value`` as JSON; raises EncodeError naming ``what`` and the bad value."""
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise EncodeError(f"{what} cannot be encoded as JSON: {exc}") from None


def loads(raw: bytes | str, *, what: str) -> Any:
    """Decode JSON; raises DecodeError naming ``what`` (run, task, field, file...)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"{what} is not valid JSON: {exc}") from None


def encode_result(result: TaskResult, *, what: str) -> bytes:
    """Encode one TaskResult (its data must be JSON)."""
    return dumps(result.to_dict(), what=what)


def decode_result(raw: bytes | str, *, what: str) -> TaskResult:
    """Decode one TaskResult; raises DecodeError naming ``what`` and the field at fault."""
    try:
        return TaskResult.from_dict(loads(raw, what=what))
    except SnapshotError as exc:
        raise DecodeError(f"{what}: {exc}") from None


def snapshot_to_document(snapshot: Mapping[str, TaskResult]) -> dict[str, Any]:
    """The file form of a snapshot: ``{"version": 1, "results": {...}}``."""
    return {
        "version": SNAPSHOT_VERSION,
        "results": {name: result.to_dict() for name, result in snapshot.items()},
    }


def snapshot_to_json(snapshot: Mapping[str, TaskResult]) -> bytes:
    """Encode a snapshot in its versioned file form (indented, readable)."""
    try:
        return orjson.dumps(snapshot_to_document(snapshot), option=orjson.OPT_INDENT_2)
    except TypeError as exc:
        raise EncodeError(f"snapshot cannot be encoded as JSON: {exc}") from None


def snapshot_from_json(raw: bytes | str, *, source: str) -> dict[str, TaskResult]:
    """Decode a snapshot document; every error names ``source`` (a file, a run)."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SnapshotError(f"{source}: not valid JSON: {exc}") from None
    return snapshot_from_document(document, source=source)


def snapshot_from_document(document: Any, *, source: str) -> dict[str, TaskResult]:
    """Accept the versioned form, or a bare ``{task: result}`` mapping."""
    if not isinstance(document, Mapping):
        raise SnapshotError(f"{source}: not a snapshot (expected a JSON object)")
    if "version" in document or "results" in document:
        version = document.get("version")
        if not isinstance(version, int) or version > SNAPSHOT_VERSION:
            raise SnapshotError(
                f"{source}: snapshot version {version!r} is not supported "
                f"(this rqdag reads versions up to {SNAPSHOT_VERSION})"
            )
        document = document.get("results")
        if not isinstance(document, Mapping):
            raise SnapshotError(f"{source}: field 'results' must be an object")
    return normalize_snapshot(document, source=source)


def normalize_snapshot(snapshot: Mapping[Any, Any], *, source: str) -> dict[str, TaskResult]:
    """Turn a mapping of TaskResult or plain dicts into ``dict[str, TaskResult]``."""
    if not isinstance(snapshot, Mapping):
        raise SnapshotError(f"{source}: a snapshot must be a mapping of task name to result")
    out: dict[str, TaskResult] = {}
    for name, value in snapshot.items():
        if not isinstance(name, str):
            raise SnapshotError(f"{source}: task names must be strings, got {name!r}")
        if isinstance(value, TaskResult):
            out[name] = value
            continue
        try:
            out[name] = TaskResult.from_dict(value)
        except SnapshotError as exc:
            raise SnapshotError(f"{source}: task '{name}': {exc}") from None
    return out
