"""Episode: a lasting condition is logged when it starts, changes and ends, never once per retry."""

from __future__ import annotations

import logging

import pytest
import redis

from rqdag.coordinator.service_failures import error_code
from rqdag.shared.episodes import Episode, describe

LOGGER = "tests.episodes"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def episode(clock: Clock) -> Episode:
    return Episode(logging.getLogger(LOGGER), "Redis unreachable", "Redis reachable again", clock=clock)


def test_a_repeated_failure_is_logged_once_and_its_end_once(
    episode: Episode, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    assert not episode.over()  # nothing to end yet: silent
    refused = redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    logged = []
    for _ in range(12):
        logged.append(episode.seen(refused))
        clock.now += 1.025
    assert logged == [True] + [False] * 11
    assert episode.active and episode.count == 12
    assert episode.over()
    assert not episode.over() and not episode.active
    assert messages(caplog) == [
        "Redis unreachable: Error 111 connecting to 127.0.0.1:6379. Connection refused.",
        "Redis reachable again after 12.3 s (12 failed attempts)",
    ]
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.WARNING]


def test_a_change_of_kind_is_logged_but_not_a_change_of_text_within_a_kind(
    episode: Episode, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    episode.seen(redis.ConnectionError("Connection closed by server."), kind="ConnectionError")
    episode.seen(redis.ConnectionError("Error 111 connecting. Connection refused."), kind="ConnectionError")
    episode.seen(redis.TimeoutError("Timeout reading from socket"), kind="TimeoutError")
    episode.seen(redis.TimeoutError("Timeout reading from socket"), kind="TimeoutError")
    clock.now += 2
    episode.over()
    assert messages(caplog) == [
        "Redis unreachable: Connection closed by server.",
        "Redis unreachable: Timeout reading from socket (before: Error 111 connecting. Connection refused.)",
        "Redis reachable again after 2.0 s (4 failed attempts)",
    ]


def test_by_default_another_reason_is_another_kind(
    episode: Episode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    assert episode.seen("OOM command not allowed")
    assert not episode.seen("OOM command not allowed")
    assert episode.seen("BUSY Redis is busy running a script")
    assert len(messages(caplog)) == 2


def test_a_new_episode_starts_over(episode: Episode, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    for _ in range(3):
        episode.seen("down")
    episode.over()
    clock.now += 50
    episode.seen("down")
    clock.now += 0.5
    episode.over()
    assert messages(caplog)[2:] == [
        "Redis unreachable: down",
        "Redis reachable again after 0.5 s (1 failed attempt)",
    ]


def test_a_reminder_while_it_lasts_when_asked(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    log = logging.getLogger(LOGGER)
    long = Episode(log, "Redis is out of memory", "Redis has memory again", remind_every_s=60, clock=clock)
    for _ in range(150):
        long.seen("OOM command not allowed")
        clock.now += 1
    assert messages(caplog) == [
        "Redis is out of memory: OOM command not allowed",
        "Redis is out of memory for 60.0 s now (61 failed attempts): OOM command not allowed",
        "Redis is out of memory for 120.0 s now (121 failed attempts): OOM command not allowed",
    ]


def test_the_level_is_the_callers(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    quiet = Episode(logging.getLogger(LOGGER), "slow", "fast again", level=logging.INFO, clock=clock)
    quiet.seen("x")
    quiet.over()
    assert [r.levelno for r in caplog.records] == [logging.INFO, logging.INFO]


def test_reasons_are_one_line_and_a_silent_exception_is_named() -> None:
    assert describe(RuntimeError("two\n  lines")) == "two lines"
    assert describe(redis.TimeoutError()) == "TimeoutError"


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (redis.ResponseError("BUSY Redis is busy running a script."), "BUSY"),
        (redis.ResponseError("Error running script (call to f_1): oops"), "ResponseError"),
        (
            redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
            "OutOfMemoryError",
        ),
        (redis.exceptions.NoPermissionError("this user has no permissions"), "NoPermissionError"),
    ],
)
def test_the_kind_of_a_redis_error_is_its_type_or_its_reply_code(exc: redis.RedisError, kind: str) -> None:
    assert error_code(exc) == kind
