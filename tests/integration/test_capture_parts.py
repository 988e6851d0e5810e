"""The capture's parts in this process, against a real redis-server: what lands in the logs stream.

Each test captures around plain calls as the job function does around a task
(``LogShipper.capture``), then reads the run's stream back.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from rqdag.errors import RqdagError
from rqdag.shared.connect import connect
from rqdag.shared.model.task_logs import LogLimits, LogLine
from rqdag.shared.model.vocabulary import LogStream
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.scripts import Scripts
from rqdag.shared.store.task_logs import read_task_logs
from rqdag.worker import capture_hooks as capture
from rqdag.worker.capture import LogShipper
from rqdag.worker.ticker import Ticker
from tests.support.redis import free_port
from tests.support.runs import create_run

log = logging.getLogger("tests.capture")


@pytest.fixture(autouse=True)
def hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The hooks the capture installs are taken out again after each test."""
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    root = logging.getLogger()
    monkeypatch.setattr(root, "level", logging.INFO)
    yield
    capture.uninstall_hooks()


def shipper(conn: redis.Redis, limits: LogLimits | None = None) -> LogShipper:
    """A worker process's shipper on ``conn``."""
    return LogShipper(conn, Scripts.register(conn).append_logs, limits or LogLimits(), Ticker())


def messages(conn: redis.Redis, run_id: str, task: str | None = None) -> list[tuple[str, int, str, str]]:
    """(task, attempt, stream, message) of each stored line."""
    found = read_task_logs(RunStore(conn), run_id, task)
    return [(line.task, line.attempt, line.stream.value, line.message) for line in found.lines]


def test_concurrent_attempts_keep_their_own_lines_and_other_threads_stay_out(
    redis_conn: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    create_run(redis_conn, "cap-1")
    ship = shipper(redis_conn)
    both_started = threading.Barrier(3)

    def attempt(task: str) -> None:
        with ship.capture("cap-1", task, 1):
            both_started.wait()
            for i in range(3):
                print(f"{task} {i}")
                log.info("%s logs %d", task, i)
                time.sleep(0.01)

    threads = [threading.Thread(target=attempt, args=(t,)) for t in ("a", "b")]
    for thread in threads:
        thread.start()
    both_started.wait()
    print("not a task's")
    log.info("not a task's either")
    for thread in threads:
        thread.join()
    for task in ("a", "b"):
        expected = [
            (task, 1, s, m)
            for i in range(3)
            for s, m in (("stdout", f"{task} {i}"), ("log", f"{task} logs {i}"))
        ]
        assert messages(redis_conn, "cap-1", task) == expected
    assert len(messages(redis_conn, "cap-1")) == 12
    assert "not a task's" in capsys.readouterr().out, "writes still reach the real stream"


def test_lines_are_assembled_cut_and_kept_within_the_byte_limit(redis_conn: redis.Redis) -> None:
    create_run(redis_conn, "cap-2")
    ship = shipper(redis_conn, LogLimits(attempt_lines=100, attempt_bytes=40))
    with ship.capture("cap-2", "t", 3):
        sys.stdout.write("wind")
        sys.stderr.write("an error line\r\n")
        sys.stdout.write("ows line\nlast")
    with ship.capture("cap-2", "u", 1):
        print("x" * 30)
        print("y" * 30)
        print("never kept")
    found = read_task_logs(RunStore(redis_conn), "cap-2").lines
    assert [(ln.task, ln.attempt, ln.stream.value, ln.message) for ln in found[:3]] == [
        ("t", 3, "stderr", "an error line"),
        ("t", 3, "stdout", "windows line"),
        ("t", 3, "stdout", "last"),
    ]
    assert [ln.message for ln in found[3:4]] == ["x" * 30]
    assert found[4].stream is LogStream.TRUNCATED and found[4].truncated
    assert "100 lines or 40 bytes per attempt" in found[4].message
    assert len(found) == 5


def test_a_logged_exception_carries_its_traceback(redis_conn: redis.Redis) -> None:
    create_run(redis_conn, "cap-3")
    with shipper(redis_conn).capture("cap-3", "t", 1):
        try:
            raise ValueError("bad row 7")
        except ValueError:
            log.exception("could not load")
        log.debug("below the level: not a record at all")
    [line] = read_task_logs(RunStore(redis_conn), "cap-3").lines
    assert line.level == "error" and line.logger == "tests.capture"
    assert line.message.startswith("could not load\nTraceback")
    assert "ValueError: bad row 7" in line.message


def test_an_unreachable_redis_costs_the_lines_and_a_warning_never_the_task(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nowhere = connect(f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="rqdag.worker"), shipper(nowhere).capture("cap-4", "t", 1):
        print("lost line")
        log.info("lost record")
    assert time.monotonic() - started < 10
    warnings = [r.getMessage() for r in caplog.records if r.name == "rqdag.worker"]
    assert len(warnings) == 1 and "lines of its output were not stored" in warnings[0]


def test_lines_for_a_run_that_is_gone_are_not_stored(redis_conn: redis.Redis) -> None:
    keys = RunKeys("cap-5")
    line = LogLine("t", 1, time.time(), LogStream.STDOUT, "late")
    appended = Scripts.register(redis_conn).append_logs
    assert appended(keys, lines=[line], run_lines=10) is None
    assert not redis_conn.exists(keys.logs), "no stream outlives its run"
    create_run(redis_conn, "cap-5")
    redis_conn.pexpire(keys.meta, 60_000)
    assert appended(keys, lines=[line, line], run_lines=10) == 2
    assert 0 < int(redis_conn.pttl(keys.logs)) <= 60_000, "a new stream takes its run's expiry"


def test_capture_off_stores_nothing(redis_conn: redis.Redis) -> None:
    create_run(redis_conn, "cap-6")
    with shipper(redis_conn, LogLimits(attempt_lines=0)).capture("cap-6", "t", 1):
        print("not captured")
    assert not redis_conn.exists(RunKeys("cap-6").logs)


@pytest.mark.parametrize(
    "limits", [{"attempt_lines": -1}, {"attempt_bytes": 0}, {"run_lines": 0}, {"attempt_lines": True}]
)
def test_bad_limits_are_refused_naming_them(limits: dict[str, int]) -> None:
    with pytest.raises(RqdagError, match="log limit"):
        LogLimits(**limits)
