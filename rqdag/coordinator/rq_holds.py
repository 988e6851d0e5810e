"""RQDispatcher's waits, sleeps and subflows: timers in Redis, child runs, signals.

None of these is an RQ job: the coordinator completes them itself, from a timer
it stores (fenced by the lease, so a restarted coordinator does not start a sleep
over), a child run's outcome, or a signal (``rqdag signal``) read from the run's
``signals`` hash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from rqdag.coordinator.dispatch import Completion, CompletionKind
from rqdag.coordinator.lease import Lease
from rqdag.errors import DecodeError, LeaseLostError
from rqdag.shared.model.holds import params_task
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import EventKind
from rqdag.shared.model.workflow import Workflow
from rqdag.shared.store.children import cancel_child, child_outcome, start_child
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.records import text
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.scripts import Scripts
from rqdag.shared.store.signals import signal_epoch, signal_result

log = logging.getLogger("rqdag.coordinator")


class RQHoldsMixin:
    """:class:`~rqdag.coordinator.rq_dispatcher.RQDispatcher`'s part for the tasks it holds."""

    _scripts: Scripts
    _lease: Lease
    _keys: RunKeys
    _store: RunStore
    _epoch: int
    _signalled: list[str] | None
    _children: list[str]
    problems: list[str]
    _decode: Callable[[bytes | str, str], TaskResult]

    def hold(self, task: str, seconds: float) -> float:
        """Start the timer of a wait or sleep in Redis, fenced, or read back the one stored."""
        left = self._scripts.hold_timer(
            self._keys, lease=self._lease.value, field=f"{self._epoch}:{task}", seconds=seconds
        )
        if left is None:
            raise LeaseLostError(
                f"run '{self._lease.run_id}': lease lost while starting the timer of '{task}'"
            )
        return left

    def start_child(self, task: str, workflow: Workflow, params: Any) -> None:
        """Start the child run ``RUN.task`` once (see :mod:`rqdag.shared.store.children`), with
        the data of its params task as stored (``params`` when none is)."""
        self._lease.renew_if_due()
        run = self._lease.run_id
        stored = self._store.read_result_json(run, params_task(task))  # a restarted state has no data
        if stored is not None:
            params = self._decode(stored, f"run '{run}': results field '{params_task(task)}'").data
        start_child(self._store, run, task, self._epoch, workflow, params)

    def child_outcome(self, task: str) -> TaskResult | None:
        """The child run's outcome, or None while it runs."""
        return child_outcome(self._store, self._lease.run_id, task)

    def cancel_child(self, task: str, reason: str) -> None:
        """Ask the child run to stop."""
        cancel_child(self._store, self._lease.run_id, task, reason)

    def _note_signals(self, events: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """The tasks of the ``signal`` and ``child`` events among ``events``, for :meth:`_signals`."""
        for _, fields in events:
            kind = text(fields.get(b"kind", b""))
            if kind == EventKind.SIGNAL and self._signalled is not None:  # None: all are read anyway
                self._signalled.append(text(fields.get(b"task", b"")))
            elif kind == EventKind.CHILD:
                self._children.append(text(fields.get(b"task", b"")))

    def _signals(self) -> list[Completion]:
        """Signals that arrived, as completions; the first call takes every stored one (a
        signal sent before this coordinator started, or before its wait was reached)."""
        run = self._lease.run_id
        ended, self._children = self._children, []
        out = [Completion(task, "", TaskResult.success(), CompletionKind.CHILD_ENDED) for task in ended]
        tasks, self._signalled = self._signalled, []
        stored = self._store.read_signals(run, tasks)
        for task, raw in stored.items():
            try:
                if signal_epoch(raw, run, task) < self._epoch:
                    continue
                out.append(Completion(task, "", signal_result(raw, run, task), CompletionKind.SIGNALLED))
            except DecodeError as exc:
                self.problems.append(str(exc))
                log.error("%s", exc)
        return out
