"""Snapshots as files and documents: save_snapshot, load_snapshot and the codec behind them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rqdag import TaskMetrics, TaskResult, TaskStatus, load_snapshot, save_snapshot
from rqdag.errors import DecodeError, EncodeError, SnapshotError
from rqdag.shared.model import codec


def sample() -> dict[str, TaskResult]:
    return {
        "extract": TaskResult(
            TaskStatus.SUCCESS,
            data={"rows": [1, 2], "name": "é"},
            metrics=TaskMetrics(started_at=1.0, finished_at=2.0, duration_s=1.0, attempt=1, worker="w"),
            definition_hash="h1",
        ),
        "load": TaskResult.failure("OSError: disk full", error="Traceback ..."),
        "report": TaskResult.skipped("dependency 'load' failed"),
        "notify": TaskResult.cancelled("run cancelled"),
    }


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    path = save_snapshot(sample(), tmp_path / "run.json")
    assert path == tmp_path / "run.json"
    assert load_snapshot(path) == sample()
    assert load_snapshot(str(path)) == sample()


def test_the_file_is_versioned_readable_json(tmp_path: Path) -> None:
    path = save_snapshot(sample(), tmp_path / "run.json")
    document = json.loads(path.read_text())
    assert document["version"] == codec.SNAPSHOT_VERSION == 1
    assert set(document) == {"version", "results"}
    assert document["results"]["load"]["status"] == "failure"
    assert "\n  " in path.read_text(), "indented for humans"


def test_save_replaces_the_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    save_snapshot(sample(), path)
    save_snapshot({"only": TaskResult.success()}, path)
    assert load_snapshot(path) == {"only": TaskResult.success()}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_an_empty_snapshot_round_trips(tmp_path: Path) -> None:
    assert load_snapshot(save_snapshot({}, tmp_path / "empty.json")) == {}


def test_a_bare_mapping_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bare.json"
    path.write_text(json.dumps({name: r.to_dict() for name, r in sample().items()}))
    assert load_snapshot(path) == sample()


def test_results_must_be_an_object(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"version": 1, "results": [1]}')
    with pytest.raises(SnapshotError, match="field 'results' must be an object") as info:
        load_snapshot(path)
    assert str(path) in str(info.value)


def test_snapshot_from_json_names_its_source() -> None:
    with pytest.raises(SnapshotError, match=r"^run r1: not valid JSON"):
        codec.snapshot_from_json(b"{", source="run r1")
    with pytest.raises(SnapshotError, match=r"^run r1: task 'a': unknown status 'ok'"):
        codec.snapshot_from_json(b'{"a": {"status": "ok"}}', source="run r1")


def test_normalize_snapshot_mixes_results_and_plain_dicts() -> None:
    mixed = {"a": TaskResult.success(1), "b": {"status": "failure", "message": "x"}}
    assert codec.normalize_snapshot(mixed, source="s") == {
        "a": TaskResult.success(1),
        "b": TaskResult.failure("x"),
    }
    with pytest.raises(SnapshotError, match="task names must be strings"):
        codec.normalize_snapshot({1: {"status": "success"}}, source="s")


def test_dumps_and_loads_name_what_failed() -> None:
    assert codec.loads(codec.dumps({"a": [1]}, what="x"), what="x") == {"a": [1]}
    with pytest.raises(EncodeError, match="the value returned by task 'a' cannot be encoded as JSON"):
        codec.dumps({1, 2}, what="the value returned by task 'a'")
    with pytest.raises(DecodeError, match="result of task 'a' in run r is not valid JSON"):
        codec.loads(b"{nope", what="result of task 'a' in run r")


def test_encode_and_decode_one_result() -> None:
    result = sample()["extract"]
    assert codec.decode_result(codec.encode_result(result, what="x"), what="x") == result
    with pytest.raises(DecodeError, match=r"^run r task a: unknown status 'meh'"):
        codec.decode_result(b'{"status": "meh"}', what="run r task a")
