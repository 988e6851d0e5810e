"""The worker's ticker: periodic calls on one thread, cancelled by handle, fresh after a fork."""

from __future__ import annotations

import os
import threading
import time

from rqdag.worker.ticker import Ticker


def test_calls_repeat_until_cancelled() -> None:
    ticker = Ticker()
    calls: list[float] = []
    three = threading.Event()

    def call() -> None:
        calls.append(time.monotonic())
        if len(calls) >= 3:
            three.set()

    handle = ticker.every(0.02, call)
    assert three.wait(2.0)
    ticker.cancel(handle)
    seen = len(calls)
    time.sleep(0.1)
    assert len(calls) <= seen + 1, "at most a call already under way finishes after cancel"


def test_one_failing_call_does_not_stop_the_others() -> None:
    ticker = Ticker()
    good = threading.Event()
    failed = threading.Event()

    def bad() -> None:
        failed.set()
        raise RuntimeError("boom")

    handles = [ticker.every(0.01, bad), ticker.every(0.01, good.set)]
    try:
        assert failed.wait(2.0)
        good.clear()
        assert good.wait(2.0), "the good call still runs after the bad one raised"
    finally:
        for handle in handles:
            ticker.cancel(handle)


def test_a_forked_child_gets_a_ticker_of_its_own() -> None:
    ticker = Ticker()
    ticker.every(0.05, lambda: None)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's thread is gone, a new one must serve it
        fired = threading.Event()
        ticker.every(0.01, fired.set)
        os.write(write, b"1" if fired.wait(2.0) else b"0")
        os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 1) == b"1"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
