"""Enforcing a task's ``timeout_s`` inside the job (RQ's own job timeout is off).

In the main thread, which is where RQ performs jobs, a one-shot ``SIGALRM``
interrupts the task with a private ``BaseException`` (the task boundary catches
only ``Exception``, so the task cannot turn it into a result by accident), and
``on_expire`` runs once the task has unwound. In any
other thread the deadline is cooperative: the task is told through
``on_expire`` (which sets ``ctx.cancelled``) and its late answer is discarded.
With ``abandon`` (a slot of a concurrent worker), the call runs in a thread of its
own and the caller stops waiting at the deadline, so the slot is free at once
while the task, told through ``on_expire``, winds down or not.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import TypeVar

R = TypeVar("R")


class _DeadlinePassed(BaseException):
    """Raised in the task's thread when its time is up; never leaves this module."""


def call_with_deadline(
    call: Callable[[], R], timeout_s: float | None, on_expire: Callable[[], None], *, abandon: bool = False
) -> tuple[bool, R | None]:
    """Run ``call()``; return ``(False, value)``, or ``(True, None)`` when it ran out of time.

    ``on_expire`` runs once, when the deadline passes. Every alarm is cancelled
    before this function returns.
    """
    if timeout_s is None:
        return False, call()
    if abandon:
        return _abandoning(call, timeout_s, on_expire)
    if threading.current_thread() is threading.main_thread():
        return _with_alarm(call, timeout_s, on_expire)
    return _with_timer(call, timeout_s, on_expire)


def _with_alarm(
    call: Callable[[], R], timeout_s: float, on_expire: Callable[[], None]
) -> tuple[bool, R | None]:
    fired: list[bool] = []  # appended to by the handler: no lock involved

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        # No locks here: the interrupted code may hold the one ``on_expire`` takes.
        if not fired:
            fired.append(True)
            raise _DeadlinePassed()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    value: R | None = None
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout_s)
            value = call()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _DeadlinePassed:
        pass  # the alarm is one-shot: once it fired, no other can follow
    finally:
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
    if fired:  # also when the task swallowed the interruption and went on
        on_expire()
        return True, None
    return False, value


def _with_timer(
    call: Callable[[], R], timeout_s: float, on_expire: Callable[[], None]
) -> tuple[bool, R | None]:
    fired = threading.Event()

    def expire() -> None:
        fired.set()
        on_expire()

    timer = threading.Timer(timeout_s, expire)
    timer.daemon = True
    timer.start()
    try:
        value = call()
    finally:
        timer.cancel()
    return (True, None) if fired.is_set() else (False, value)


def _abandoning(
    call: Callable[[], R], timeout_s: float, on_expire: Callable[[], None]
) -> tuple[bool, R | None]:
    box: list[R] = []
    done = threading.Event()

    def run() -> None:
        try:
            box.append(call())
        finally:
            done.set()

    threading.Thread(target=run, name="rqdag-task", daemon=True).start()
    if done.wait(timeout_s) and box:
        return False, box[0]
    if done.is_set():  # the call raised: the task boundary lets nothing of the task's out
        raise RuntimeError("the task call ended without a result")
    on_expire()
    return True, None
