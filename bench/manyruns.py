"""Section 8, many runs at once: N small runs on one ``rqdag coordinator --max-runs N``.

N runs of 5 no-op tasks each (a chain) are submitted at once to a real
coordinator service in its own process, on the base rqdag worker pool. A
repetition is timed from before the first ``submit`` until no run is left in
the active-runs index (polled every 20 ms), then every run must have
succeeded. Meanwhile a sampler reads the coordinator's thread count
(``/proc/PID/status``) and its connections every 100 ms: its own TCP sockets to
Redis's port (``/proc/PID/fd`` and ``/proc/PID/net/tcp``), whatever other clients
connect or leave meanwhile. Errors are the coordinator's log lines at ERROR level
or about an exhausted connection pool ("Too many connections").
The largest N's rate is set against the smallest N's: a coordinator given more
runs at once should not drive them more slowly; and each N's tasks/s against raw
RQ's for as many jobs (5N independent no-op jobs: see :func:`raw_jobs`) on the
same workers, with the coordinator's CPU time (user + system,
``/proc/PID/stat``) per task.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from types import TracebackType

from rq.queue import EnqueueData

from bench.config import REPO
from bench.drive import BenchError
from bench.pools import child_env
from bench.session import Session
from bench.stats import Row, Series, ratios
from bench.workloads import chain_workflow, raw_independent
from rqdag.local.processes import death_signal_hook
from rqdag.shared.model.workflow import Workflow
from rqdag.shared.store import keys
from rqdag.shared.store.runs import RunStore

SECTION = "8. Many concurrent runs"
TASKS_PER_RUN = 5
TARGET_RATIO = 0.90
POLL_S = 0.02
SAMPLE_S = 0.1
START_TIMEOUT_S = 60.0
STOP_GRACE_S = 30.0
POOL_ERRORS = ("Too many connections", "No connection available")
NOTES = [
    f"each run is a chain of {TASKS_PER_RUN} no-op tasks; all N are submitted at once to one "
    "`rqdag coordinator --max-runs N` process (its own process, DEBUG logs) on the base rqdag "
    "worker pool",
    "sizes of 10,000 runs or more are measured once (a repetition takes minutes); the others "
    "as many times as the suite's repetitions",
    "timed from before the first submit until the coordinator has ended every run; peaks are "
    "sampled every 100 ms; connections are the coordinator process's own TCP sockets to Redis's port",
]


@dataclass(frozen=True)
class Round:
    """One repetition: wall time, whether it ended in time, and what the coordinator peaked at."""

    runs: int
    seconds: float
    finished: bool
    threads: int
    connections: int
    errors: int
    tasks: int = 0
    cpu_s: float = 0.0

    @property
    def rate(self) -> float:
        """Runs ended per second."""
        return self.runs / self.seconds if self.seconds > 0 else 0.0

    @property
    def task_rate(self) -> float:
        """Tasks ended per second."""
        return self.tasks / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_per_task_us(self) -> float:
        """The coordinator's CPU time (user + system) per task, in microseconds."""
        return self.cpu_s / self.tasks * 1e6 if self.tasks else 0.0


class CoordinatorProcess:
    """``python -m rqdag coordinator --max-runs N`` on the bench's Redis, its log in the workdir."""

    def __init__(self, session: Session, max_runs: int, *, log_level: str = "DEBUG") -> None:
        self._session = session
        self.max_runs = max_runs
        self.log_level = log_level
        self.log = session.bench.workdir / "logs" / f"coordinator-{max_runs}-{time.monotonic_ns()}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The coordinator's process id."""
        assert self._proc is not None
        return self._proc.pid

    def __enter__(self) -> CoordinatorProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "rqdag", "coordinator", "--redis", self._session.bench.url]
        command += ["--max-runs", str(self.max_runs), "--log-level", self.log_level]
        with self.log.open("ab") as out:
            self._proc = subprocess.Popen(
                command,
                cwd=REPO,
                env=child_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=death_signal_hook(),
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while " started" not in self.log.read_text(errors="replace"):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the coordinator did not start:\n{self.tail()}")
            time.sleep(0.05)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def cpu_s(self) -> float:
        """The coordinator's CPU time so far (user + system, from ``/proc/PID/stat``)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tail(self) -> str:
        """The end of the coordinator's log."""
        return self.log.read_text(errors="replace")[-3000:]

    def errors(self, since: int) -> int:
        """Error lines of the log from byte ``since`` on."""
        with self.log.open("rb") as log:
            log.seek(since)
            lines = log.read().decode(errors="replace").splitlines()
        return sum(1 for line in lines if " ERROR " in line or any(e in line for e in POOL_ERRORS))

    def log_size(self) -> int:
        """Bytes written to the log so far."""
        return self.log.stat().st_size


class PeakSampler:
    """A thread that keeps the highest thread count of a process and its count of Redis connections."""

    def __init__(self, session: Session, pid: int) -> None:
        self._pid = pid
        self._port = session.bench.client.connection_pool.connection_kwargs["port"]
        self._status = Path(f"/proc/{pid}/status")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-peaks", daemon=True)
        self.threads = 0
        self.clients = 0

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self.clients = max(self.clients, redis_sockets(self._pid, self._port))
            self.threads = max(self.threads, process_threads(self._status))

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def redis_sockets(pid: int, port: int) -> int:
    """How many TCP sockets process ``pid`` holds to ``port`` (0 when it is gone)."""
    try:
        fds = Path(f"/proc/{pid}/fd")
        inodes = {os.readlink(fd)[8:-1] for fd in fds.iterdir() if os.readlink(fd).startswith("socket:[")}
        rows = []
        for table in ("tcp", "tcp6"):
            rows += Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
    except OSError:
        return 0
    wanted = f":{port:04X}"
    return sum(1 for row in rows if row.split()[2].endswith(wanted) and row.split()[9] in inodes)


def process_threads(status: Path) -> int:
    """The ``Threads:`` count of a ``/proc/PID/status`` file (0 when there is none)."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def workflow() -> Workflow:
    """Every run's shape: a chain of TASKS_PER_RUN no-op tasks."""
    return chain_workflow(TASKS_PER_RUN, name=f"bench-many-{TASKS_PER_RUN}")


def one_round(session: Session, coordinator: CoordinatorProcess, count: int) -> Round:
    """Submit ``count`` runs at once and wait until the coordinator has ended them all."""
    session.bench.reset()
    shape = workflow()
    ids = [session.next_id(f"many{count}") for _ in range(count)]
    since = coordinator.log_size()
    conn = session.bench.client
    bound = session.config.run_bound_s
    cpu0 = coordinator.cpu_s()
    with PeakSampler(session, coordinator.pid) as peaks:
        t0 = time.perf_counter()
        for run_id in ids:
            session.client.submit(shape, run_id=run_id)
        while conn.scard(keys.ACTIVE_RUNS) and time.perf_counter() - t0 < bound:
            time.sleep(POLL_S)
        seconds = time.perf_counter() - t0
    cpu_s = coordinator.cpu_s() - cpu0
    finished = seconds < bound
    store = RunStore(conn)
    failed = [r for r in ids if store.read_meta(r).status != "succeeded"] if finished else []
    if failed:
        raise BenchError(f"{len(failed)} of {count} runs did not succeed (first: {failed[0]})")
    return Round(
        runs=count,
        seconds=min(seconds, bound),
        finished=finished,
        threads=peaks.threads,
        connections=peaks.clients,
        errors=coordinator.errors(since),
        tasks=count * TASKS_PER_RUN,
        cpu_s=cpu_s,
    )


def raw_jobs(count: int, tag: str) -> list[EnqueueData]:
    """As many raw RQ no-op jobs as ``count`` runs have tasks, independent of each other.

    Not chains: RQ 3.0's ``enqueue_many`` of many ``depends_on`` chains at once leaves
    some dependents deferred after their dependency finished (9 of 100 jobs with 20
    chains), so the round never ends. Independent jobs spare RQ its dependency work:
    a reference at least as fast as the chains would be.
    """
    return raw_independent(count * TASKS_PER_RUN, tag)


def measure(session: Session, counts: tuple[int, ...]) -> list[Row]:
    """Per N of ``counts``: ``reps`` rounds of N runs on a coordinator with ``--max-runs N``
    (one round for N of ``many_runs_large`` or more)."""
    rounds: dict[int, list[Round]] = {}
    raw: dict[int, list[float]] = {}
    for count in counts:
        tasks = count * TASKS_PER_RUN
        rounds[count], raw[count] = [], []
        with CoordinatorProcess(session, count) as coordinator:
            reps = 1 if count >= session.config.many_runs_large else session.config.reps
            for _ in range(reps):  # rqdag and raw RQ alternate, on the same workers
                rounds[count].append(one_round(session, coordinator, count))
                timing = session.raw_jobs(partial(raw_jobs, count))
                raw[count].append(tasks / timing.seconds if timing.finished else 0.0)
    smallest = min(counts)
    rows: list[Row] = []
    for count in counts:
        rows += rows_of(count, rounds[count], rounds[smallest] if count != smallest else None)
        rows += raw_rows(count, rounds[count], raw[count])
    return rows


def raw_rows(count: int, rounds: list[Round], raw: list[float]) -> list[Row]:
    """Tasks/s against raw RQ's for the same jobs (measured in the same run), and CPU per task."""
    rate = _series(rounds, "task_rate")
    reference = Series.of(raw, any(r == 0.0 for r in raw))
    ratio = ratios(rate, reference)
    return [
        Row(
            SECTION,
            f"{count:,} runs: tasks/s against raw RQ's for the same jobs",
            "tasks/s",
            rate,
            reference,
            "raw RQ, as many independent jobs",
            ratio=ratio,
            target=f">= {TARGET_RATIO:.2f}",
            met=ratio.median >= TARGET_RATIO and not ratio.bound_hit,
        ),
        Row(
            SECTION,
            f"{count:,} runs: coordinator CPU per task",
            "us",
            _series(rounds, "cpu_per_task_us"),
            None,
            "-",
            target="<= 100",
            met=max(_series(rounds, "cpu_per_task_us").values) <= 100,
        ),
    ]


def _series(rounds: list[Round], value: str) -> Series:
    return Series.of([float(getattr(r, value)) for r in rounds], any(not r.finished for r in rounds))


def rows_of(count: int, rounds: list[Round], base: list[Round] | None) -> list[Row]:
    """The rows of one N: rate (against the smallest N's), wall time, peaks, errors."""
    rate = _series(rounds, "rate")
    rate_row = Row(
        SECTION, f"{count:,} runs of {TASKS_PER_RUN} no-op tasks at once", "runs/s", rate, None, "-"
    )
    if base is not None:
        reference = _series(base, "rate")
        ratio = ratios(rate, reference)
        rate_row = replace(
            rate_row,
            reference=reference,
            reference_name=f"{base[0].runs:,} runs at once",
            ratio=ratio,
            target=f">= {TARGET_RATIO:.2f}",
            met=ratio.median >= TARGET_RATIO and not ratio.bound_hit,
        )
    errors = _series(rounds, "errors")
    error_row = Row(SECTION, f"{count:,} runs: errors in the coordinator's log", "lines", errors, None, "-")
    return [
        rate_row,
        Row(SECTION, f"{count:,} runs: wall time", "s", _series(rounds, "seconds"), None, "-"),
        Row(
            SECTION, f"{count:,} runs: coordinator threads at peak", "", _series(rounds, "threads"), None, "-"
        ),
        Row(
            SECTION,
            f"{count:,} runs: coordinator's Redis connections at peak",
            "",
            _series(rounds, "connections"),
            None,
            "-",
        ),
        replace(error_row, target="0", met=errors.high == 0),
    ]
