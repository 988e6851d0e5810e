"""A run as it goes: counts by status, tasks in flight, an ETA, followed through the event stream.

Used by ``rqdag watch`` and by the progress bar of ``rqdag run``. The view is
rebuilt from Redis (meta, results, dispatch) whenever the run's event stream
moves, read with ``XREAD BLOCK`` in short slices (redis-py's socket timeout
would end a longer block), and at least every ``refresh_s``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from rqdag.cli.output import (
    TERMINAL,
    counts_line,
    status_counts,
    styled,
)
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import AttemptState, RunStatus
from rqdag.shared.store.driving import Driver, read_driver
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.records import DispatchEntry
from rqdag.shared.store.runs import RunStore

BLOCK_SLICE_S = 1.0  # well under redis-py's socket timeout
REFRESH_S = 2.0
MAX_RUNNING_SHOWN = 12


@dataclass(frozen=True)
class InFlight:
    """One attempt in flight, as a watcher shows it."""

    task: str
    state: AttemptState
    attempt: int
    worker: str | None
    started_at: float | None
    waiting: str | None = None  # why no worker has it yet (see rqdag.coordinator.routing)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: task, state, attempt, worker, started_at, waiting."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class RunView:
    """What a watcher shows of a run at one instant."""

    run_id: str
    workflow: str
    status: RunStatus
    epoch: int
    finished: bool
    total: int
    counts: dict[str, int]
    in_flight: list[InFlight] = field(default_factory=list)
    eta_s: float | None = None
    at: float = 0.0
    note: str = ""  # said while no coordinator drives the unfinished run
    driver: Driver = field(default_factory=Driver)

    @property
    def done(self) -> int:
        """Tasks with a terminal result."""
        return sum(self.counts.get(s, 0) for s in TERMINAL)

    def signature(self) -> tuple[Any, ...]:
        """What changes when something happened (not the clock)."""
        running = tuple((r.task, r.state, r.attempt, r.worker, r.waiting) for r in self.in_flight)
        driver = (self.driver.owner, self.driver.problem)
        return (self.status, self.epoch, tuple(sorted(self.counts.items())), running, self.note, driver)

    def to_dict(self) -> dict[str, Any]:
        """JSON form of one ``rqdag watch --json`` update line (see docs/json.md)."""
        return {
            "type": "update",
            "run_id": self.run_id,
            "workflow": self.workflow,
            "status": self.status,
            "epoch": self.epoch,
            "total": self.total,
            "done": self.done,
            "counts": self.counts,
            "in_flight": [r.to_dict() for r in self.in_flight],
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
            "at": round(self.at, 3),
            "coordinator": self.driver.to_dict(),
        }


def estimate_eta(results: Mapping[str, TaskResult], remaining: int, running: int) -> float | None:
    """Seconds left: remaining tasks times the mean finished duration, over the tasks running now."""
    if remaining <= 0:
        return 0.0
    durations = [r.metrics.duration_s for r in results.values() if r.metrics.duration_s is not None]
    if not durations:
        return None
    return remaining * (sum(durations) / len(durations)) / max(running, 1)


def read_view(store: RunStore, run_id: str, undriven_note: str = "") -> RunView:
    """The run's view now (meta, results and dispatch in two round trips, the lease in one).

    ``undriven_note`` becomes the view's note while the run is unfinished and no
    coordinator holds its lease.
    """
    meta = store.read_meta(run_id)
    state = store.read_state(run_id)
    driver = read_driver(store.client, run_id)
    driven = meta.finished or driver.owner is not None
    children = sum(store.expansion_counts(run_id).values())  # mapped tasks' children count as tasks
    total = max(meta.task_count + children, len(state.results))
    counts = status_counts(state.results, state.dispatch, total)
    in_flight = sorted(
        (_in_flight(name, e) for name, e in state.dispatch.items() if name not in state.results),
        key=lambda r: (r.state is not AttemptState.RUNNING, r.started_at or 0.0, r.task),
    )
    running = sum(1 for r in in_flight if r.state is AttemptState.RUNNING)
    remaining = total - sum(counts[s] for s in TERMINAL)
    return RunView(
        run_id=run_id,
        workflow=meta.workflow,
        status=meta.status,
        epoch=meta.epoch,
        finished=meta.finished,
        total=total,
        counts=counts,
        in_flight=in_flight,
        eta_s=None if meta.finished else estimate_eta(state.results, remaining, running),
        at=time.time(),
        note="" if driven else undriven_note,
        driver=driver,
    )


def _in_flight(name: str, entry: DispatchEntry) -> InFlight:
    return InFlight(name, entry.state, entry.attempt, entry.worker, entry.started_at, entry.waiting)


class RunFollower:
    """Yields a run's views as it goes, until the run has finished."""

    def __init__(
        self, client: redis.Redis, run_id: str, *, refresh_s: float = REFRESH_S, undriven_note: str = ""
    ) -> None:
        self._client = client
        self._undriven_note = undriven_note
        self._store = RunStore(client)
        self._events = RunKeys(run_id).events
        self.run_id = run_id
        self._refresh_s = refresh_s

    def views(self, stop: threading.Event | None = None) -> Iterator[RunView]:
        """The view now, then one after every batch of events (or ``refresh_s``); the last is finished."""
        last_id: Any = b"0-0"
        reply: Any = self._client.xrevrange(self._events, count=1)
        if reply:
            last_id = reply[0][0]
        view = read_view(self._store, self.run_id, self._undriven_note)
        yield view
        next_refresh = time.monotonic() + self._refresh_s
        while not view.finished and not (stop is not None and stop.is_set()):
            reply = self._client.xread({self._events: last_id}, count=1000, block=int(BLOCK_SLICE_S * 1000))
            for _stream, entries in reply or []:
                last_id = entries[-1][0]
            if reply or time.monotonic() >= next_refresh:
                view = read_view(self._store, self.run_id, self._undriven_note)
                next_refresh = time.monotonic() + self._refresh_s
                yield view


def format_eta(seconds: float | None) -> str:
    """``eta 1m05s``, or ``eta ?`` before any task finished."""
    if seconds is None:
        return "eta ?"
    return f"eta {format_duration(seconds)}"


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``, ``4d03h``."""
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def render_view(view: RunView) -> RenderableType:
    """A progress bar with counts and ETA, and the tasks in flight with their workers."""
    head = Table.grid(padding=(0, 1))
    head.add_row(
        Text.from_markup(f"run [bold]{view.run_id}[/] {styled(view.status)}"),
        ProgressBar(total=max(view.total, 1), completed=view.done, width=30),
        Text(f"{view.done}/{view.total}"),
        Text(format_eta(view.eta_s) if not view.finished else ""),
    )
    parts: list[RenderableType] = [head, Text(counts_line(view.counts, view.total), style="dim")]
    if view.note:
        parts.append(Text(view.note, style="yellow"))
    if view.in_flight:
        table = Table(show_edge=False, header_style="bold", box=None, padding=(0, 2))
        for column in ("task", "state", "attempt", "worker", "for"):
            table.add_column(column)
        for item in view.in_flight[:MAX_RUNNING_SHOWN]:
            since = "" if item.started_at is None else format_duration(view.at - item.started_at)
            worker = item.worker or (f"waiting: {item.waiting}" if item.waiting else "")
            table.add_row(item.task, styled(item.state), str(item.attempt), worker, since)
        if len(view.in_flight) > MAX_RUNNING_SHOWN:
            table.add_row(f"... {len(view.in_flight) - MAX_RUNNING_SHOWN} more", "", "", "", "")
        parts.append(table)
    parts += [Text(line, style="red") for line in undriven_lines(view.finished, view.driver)]
    return Group(*parts)


def plain_line(view: RunView) -> str:
    """One line of text per update, for a watcher whose stdout is not a terminal."""
    stamp = time.strftime("%H:%M:%S", time.localtime(view.at))
    running = ", ".join(
        f"{r.task}@{r.worker or '?'}" for r in view.in_flight if r.state is AttemptState.RUNNING
    )
    tail = f"; running: {running}" if running else ""
    waiting = "; ".join(f"{r.task} waiting: {r.waiting}" for r in view.in_flight if r.waiting)
    tail += f"; {waiting}" if waiting else ""
    eta = "" if view.finished else f", {format_eta(view.eta_s)}"
    tail += "".join(f"; {line}" for line in undriven_lines(view.finished, view.driver, view.note))
    return f"{stamp} run {view.run_id} {view.status}: {view.done}/{view.total} done{eta}{tail}"


def undriven_lines(finished: bool, driver: Driver, note: str = "") -> list[str]:
    """What to say of a run that no coordinator drives now: ``note`` (what to do), and a recorded refusal."""
    if finished or driver.owner is not None:
        return []
    lines = [note or "no coordinator is driving this run"]
    if driver.problem:
        lines.append(driver.problem)
    return lines


@contextmanager
def progress_display(client: redis.Redis, run_id: str, out: Console, *, enabled: bool) -> Iterator[None]:
    """While the block runs, show the run's progress on ``out`` from a background thread."""
    if not enabled:
        yield
        return
    stop = threading.Event()
    follower = RunFollower(client, run_id)
    with Live(Text(f"run {run_id}"), console=out, refresh_per_second=4, transient=True) as live:

        def follow() -> None:
            try:
                for view in follower.views(stop):
                    live.update(render_view(view))
            except redis.RedisError:
                return  # the display is a courtesy; the run goes on

        thread = threading.Thread(target=follow, name=f"rqdag-progress-{run_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=BLOCK_SLICE_S * 3)
