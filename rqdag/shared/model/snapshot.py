"""Saving and loading snapshots as files."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from rqdag.errors import SnapshotError
from rqdag.shared.model.codec import snapshot_from_json, snapshot_to_json
from rqdag.shared.model.result import TaskResult


def save_snapshot(snapshot: Mapping[str, TaskResult], path: str | os.PathLike[str]) -> Path:
    """Write ``snapshot`` to ``path`` atomically (a crash never leaves half a file)."""
    return write_atomically(path, snapshot_to_json(snapshot))


def write_atomically(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file, so readers never see half of it."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return target


def load_snapshot(path: str | os.PathLike[str]) -> dict[str, TaskResult]:
    """Read a snapshot file; every error names the file."""
    target = Path(path)
    try:
        raw = target.read_bytes()
    except OSError as exc:
        raise SnapshotError(f"{target}: cannot read snapshot: {exc.strerror or exc}") from None
    return snapshot_from_json(raw, source=str(target))
