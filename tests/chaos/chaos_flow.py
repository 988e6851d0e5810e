"""The chaos test's task function and its seeded DAG builder.

Workers import this module (``--tasks tests.chaos.chaos_flow``). Every attempt
appends two lines to the ledger named by ``$RQDAG_CHAOS_LEDGER``: one when the
task body starts and one when it ends, each a single ``O_APPEND`` write, so a
SIGKILL never leaves half a line and every start that happened is on disk.

What a task does comes from the run's params (``params["tasks"][name]``): how
long it sleeps, and whether its first attempt fails (a "flaky" task, which
exercises retries across coordinator restarts).

While the file named by ``$RQDAG_CHAOS_HOLD`` exists, a task that has its result
(its ``end`` line written) waits before it returns, so the driver can take Redis
away just before the finish steps of the tasks it holds.
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from rqdag import Retry, Task, TaskContext, Workflow

LEDGER_ENV = "RQDAG_CHAOS_LEDGER"
HOLD_ENV = "RQDAG_CHAOS_HOLD"
HOLD_MAX_S = 15.0  # a hold the driver failed to lift does not hang the run
FINAL = "final"


class FlakyError(RuntimeError):
    """The planned failure of a flaky task's first attempt."""


def write_ledger(ctx: TaskContext, phase: str, **extra: Any) -> None:
    """Append one JSON line for this attempt (one ``write`` on an ``O_APPEND`` descriptor)."""
    path = os.environ.get(LEDGER_ENV)
    if not path:
        raise RuntimeError(f"${LEDGER_ENV} is not set: the chaos ledger cannot be written")
    line = {
        "run_id": ctx.run_id,
        "task": ctx.task,
        "attempt": ctx.attempt,
        "phase": phase,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "at": time.time(),
        **extra,
    }
    data = (json.dumps(line, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def work(ctx: TaskContext) -> dict[str, Any]:
    """The one task function of the chaos DAG: record, sleep, maybe fail once, record."""
    spec = ctx.params["tasks"][ctx.task]
    write_ledger(ctx, "start", inputs=sorted(ctx.inputs))
    time.sleep(float(spec["sleep_s"]))
    if spec.get("flaky") and ctx.attempt == 1:
        write_ledger(ctx, "end", outcome="error")
        _held()
        raise FlakyError(f"{ctx.task}: planned failure of the first attempt")
    write_ledger(ctx, "end", outcome="ok")
    _held()
    return {"task": ctx.task, "attempt": ctx.attempt, "inputs": len(ctx.inputs)}


def _held() -> None:
    """Wait while the driver holds finished tasks back (see the module's docstring)."""
    path = os.environ.get(HOLD_ENV)
    deadline = time.monotonic() + HOLD_MAX_S
    while path and os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)


@dataclass
class ChaosDag:
    """The workflow, the params its tasks read, and what the builder chose."""

    workflow: Workflow
    params: dict[str, Any]
    at_most_once: list[str] = field(default_factory=list)
    flaky: list[str] = field(default_factory=list)

    @property
    def deps(self) -> dict[str, tuple[str, ...]]:
        """Task name to its dependencies."""
        return {t.name: tuple(t.depends_on) for t in self.workflow.tasks}

    @property
    def budgets(self) -> dict[str, int]:
        """Task name to the most starts its retry budget allows: one for an at-most-once task,
        else ``1 + max(retry.attempts, 1)`` (a lost attempt is retried at least once)."""
        return {
            t.name: 1 if t.at_most_once else 1 + max(t.retry.attempts, 1) for t in self.workflow.tasks
        }


class _Shape:
    """The growing graph: names in creation order, each with its dependencies."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.deps: dict[str, list[str]] = {}

    def add(self, deps: list[str]) -> str:
        name = f"t{len(self.deps):04d}"
        self.deps[name] = deps
        return name

    def anchor(self) -> str:
        """An existing task, most often a recent one (so the DAG grows deep as well as wide)."""
        names = list(self.deps)
        if self.rng.random() < 0.7:
            return self.rng.choice(names[-25:])
        return self.rng.choice(names)

    def chain(self, room: int) -> None:
        prev = self.anchor()
        for _ in range(min(self.rng.randint(3, 8), room)):
            prev = self.add([prev])

    def fan_out(self, room: int) -> None:
        parent = self.anchor()
        for _ in range(min(self.rng.randint(4, 16), room)):
            self.add([parent])

    def join(self, room: int) -> None:
        """One task after several: recent tasks, or tasks nothing depends on yet."""
        if self.rng.random() < 0.5:
            taken = {d for deps in self.deps.values() for d in deps}
            pool = [n for n in self.deps if n not in taken][-40:]
        else:
            pool = list(self.deps)[-40:]
        self.add(self.rng.sample(pool, min(self.rng.randint(2, 6), len(pool))))

    def diamond(self, room: int) -> None:
        parent = self.anchor()
        width = min(self.rng.randint(3, 8), room - 1)
        if width < 1:
            self.add([parent])
            return
        middle = [self.add([parent]) for _ in range(width)]
        self.add(middle)


def build_chaos_dag(
    rng: random.Random, size: int, *, at_most_once: int, flaky: int, max_sleep_s: float = 0.2
) -> ChaosDag:
    """A seeded DAG of ``size`` tasks: roots, chains, fan-outs, joins, diamonds, and one final join.

    ``at_most_once`` tasks sleep longer (0.4-0.8 s) so that a worker can be
    killed while one runs; ``flaky`` tasks fail their first attempt and retry.
    A lost attempt counts against a task's retries: the others get 2 or 3, so
    that a task fails for good only when its workers are killed under it three
    times or more (a failure skips its dependents, and could end the run before
    the driver is through its faults).
    """
    if size < 20:
        raise ValueError(f"a chaos DAG needs at least 20 tasks, got {size}")
    shape = _Shape(rng)
    for _ in range(rng.randint(2, 4)):
        shape.add([])
    motifs = (shape.chain, shape.fan_out, shape.join, shape.diamond)
    while len(shape.deps) < size - 1:
        rng.choices(motifs, weights=(3, 2, 3, 2))[0](size - 1 - len(shape.deps))
    has_dependents = {d for deps in shape.deps.values() for d in deps}
    sinks = [n for n in shape.deps if n not in has_dependents]
    inner = [n for n, deps in shape.deps.items() if deps]
    amo = sorted(rng.sample(inner, at_most_once))
    flaky_names = sorted(rng.sample([n for n in inner if n not in amo], flaky))
    specs: dict[str, dict[str, Any]] = {}
    wf = Workflow("chaos")
    for name, deps in shape.deps.items():
        specs[name], retry = _task_spec(rng, name in amo, name in flaky_names, max_sleep_s)
        wf.add(Task(name, work, depends_on=deps, retry=retry, at_most_once=name in amo))
    specs[FINAL] = {"sleep_s": 0.0}
    wf.add(Task(FINAL, work, depends_on=sinks, retry=Retry(attempts=3)))
    return ChaosDag(wf, {"tasks": specs}, at_most_once=amo, flaky=flaky_names)


def _task_spec(
    rng: random.Random, amo: bool, flaky: bool, max_sleep_s: float
) -> tuple[dict[str, Any], Retry]:
    if amo:
        return {"sleep_s": round(rng.uniform(0.4, 0.8), 3)}, Retry(attempts=0)
    sleep_s = round(rng.uniform(0.0, max_sleep_s), 3)
    if flaky:
        return {"sleep_s": sleep_s, "flaky": True}, Retry(attempts=3, delay_s=0.1)
    retry = Retry(attempts=rng.choice((2, 3)), delay_s=rng.choice((0.0, 0.05, 0.2)))
    return {"sleep_s": sleep_s}, retry
