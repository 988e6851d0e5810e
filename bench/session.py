"""What the sections share: the server, the clients, and paired, alternating repetitions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rq import Queue
from rq.queue import EnqueueData

from bench.config import Config
from bench.drive import Timing, raw_queue, run_raw, run_rqdag
from bench.pools import RAW_QUEUE
from bench.server import BenchRedis
from bench.stats import Series
from bench.workloads import raw_independent, wide_workflow
from rqdag.client import Client
from rqdag.shared.model.workflow import Workflow

WARMUP_TASKS = 20


@dataclass
class Session:
    """One run of the suite: its config, its Redis, the in-process coordinator's client."""

    config: Config
    bench: BenchRedis
    client: Client = field(init=False)
    raw: Queue = field(init=False)
    _runs: int = 0

    def __post_init__(self) -> None:
        self.client = Client(self.bench.url)
        self.raw = raw_queue(self.client.connection, RAW_QUEUE)

    def next_id(self, label: str) -> str:
        """A fresh run id or job-id prefix."""
        self._runs += 1
        return f"bench-{label}-{self._runs}"

    def rqdag(
        self,
        workflow: Workflow,
        label: str,
        bound_s: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> Timing:
        """A clean Redis (workers stay registered), then one rqdag run driven in-process."""
        self.bench.reset()
        bound = bound_s or self.config.run_bound_s
        return run_rqdag(self.client, workflow, self.next_id(label), bound, params)

    def raw_jobs(self, make: Callable[[str], list[EnqueueData]], bound_s: float | None = None) -> Timing:
        """A clean Redis, then the raw RQ jobs ``make(tag)`` until all have finished."""
        self.bench.reset()
        datas = make(self.next_id("raw").replace("-", "_"))
        return run_raw(self.raw, datas, self.bench.client, bound_s or self.config.run_bound_s)

    def warm_up(self) -> None:
        """One small unmeasured run on each side: workers import, scripts load, connections open."""
        self.rqdag(wide_workflow(WARMUP_TASKS, name="bench-warmup"), "warmup")
        self.raw_jobs(lambda tag: raw_independent(WARMUP_TASKS, tag))

    def close(self) -> None:
        """Close the coordinator's client."""
        self.client.connection.close()


def paired(
    session: Session, workflow: Workflow, label: str, make: Callable[[str], list[EnqueueData]]
) -> tuple[list[Timing], list[Timing]]:
    """The rqdag runs of ``workflow`` and the raw RQ runs of ``make``, alternating."""
    return alternated(
        session.config.reps, lambda: session.rqdag(workflow, label), lambda: session.raw_jobs(make)
    )


def alternated(
    reps: int, first: Callable[[], Timing], second: Callable[[], Timing]
) -> tuple[list[Timing], list[Timing]]:
    """The timings of ``first`` and of ``second``, ``reps`` runs each, alternating (see :func:`alternate`)."""
    firsts: list[Timing] = []
    seconds: list[Timing] = []
    alternate(reps, lambda: firsts.append(first()), lambda: seconds.append(second()))
    return firsts, seconds


def series_of(timings: list[Timing], metric: Callable[[Timing], float]) -> Series:
    """``metric`` of each run; bound hit when any run did not finish."""
    return Series.of([metric(t) for t in timings], any(not t.finished for t in timings))


def alternate(reps: int, first: Callable[[], None], second: Callable[[], None]) -> None:
    """Run ``first`` and ``second`` ``reps`` times each, swapping their order every repetition."""
    for rep in range(reps):
        pair = (first, second) if rep % 2 == 0 else (second, first)
        for step in pair:
            step()
