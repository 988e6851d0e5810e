"""The shared helpers' one rule that CI depends on: no redis-server means a failure there, a skip here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.redis import private_redis


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_a_redis_server_that_cannot_start_fails_the_test_in_ci_and_skips_it_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("CI", ci)
    with (
        pytest.raises(outcome, match=r"(?s)cannot start a redis-server: .*no-such-directive"),
        private_redis(tmp_path, extra_args=["--no-such-directive", "1"]),
    ):
        pass
