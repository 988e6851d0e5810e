"""A Redis that answers BUSY for a while: another client runs a script that never ends, then kills it."""

from __future__ import annotations

import threading

import redis

from tests.support.wait import wait_until


class BusyScript:
    """Another client runs a never-ending script, killed after ``seconds``.

    Redis answers BUSY once a script has run ``lua-time-limit`` ms (5 s by default: set it lower).
    """

    def __init__(self, url: str, seconds: float) -> None:
        self._url = url
        self._seconds = seconds
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: Exception | None = None

    def __enter__(self) -> BusyScript:
        self._thread.start()
        with redis.Redis.from_url(self._url) as probe:
            wait_until(lambda: _busy(probe), 5, "Redis answering BUSY", step=0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join(timeout=30)

    def _run(self) -> None:
        with redis.Redis.from_url(self._url, socket_timeout=30) as looping:
            killer = threading.Timer(self._seconds, _kill_script, args=(self._url,))
            killer.start()
            try:
                looping.eval("while true do end", 0)
            except redis.ResponseError as exc:
                self.error = exc
            killer.join()


def _busy(client: redis.Redis) -> bool:
    try:
        client.ping()
    except redis.ResponseError as exc:
        return str(exc).startswith("BUSY")
    return False


def _kill_script(url: str) -> None:
    with redis.Redis.from_url(url) as client:
        client.script_kill()
