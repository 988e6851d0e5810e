"""The chaos driver: one seeded run of a big DAG while processes are killed and Redis restarts.

The seed fixes the DAG (shape, durations, retries, at-most-once and flaky
tasks) and the fault plan (how many faults of each kind, at which point of the
run's progress, with which delays). Process timing still varies between two
runs of the same seed; the victims are drawn from a seeded stream too.

The faults (:mod:`tests.chaos.faults`): workers SIGKILLed (some while they run an
at-most-once task) or stopped with SIGTERM inside a task, coordinators SIGKILLed,
Redis restarted once, cleanly (SIGTERM, AOF flushed: with ``appendfsync everysec``
a SIGKILL of Redis may lose a second of acknowledged writes, as the README states,
so that fault is out of scope here), and Redis away for longer than the heartbeat
limit just as tasks come to their finish steps (stopped, and frozen; the tasks that
get their result meanwhile are held back until Redis is gone). The outages'
windows are kept: the checks find the attempts that finished inside them.

In-doubt tasks are resolved the way an operator would, with
:func:`rqdag.shared.resolve.resolve_task`: some as soon as a random delay has
passed, others once the run shows as ``blocked``; success or failure is drawn.
A resolution as failure skips the task's dependents at once, which could end
the run before the fault plan is through, so those wait until it is; and a run
that is blocked brings its next fault forward (it would not progress otherwise).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from rqdag import TaskResult, TaskStatus
from rqdag.client import Client
from rqdag.local.redis_server import RedisServer
from rqdag.shared.connect import connect
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.records import FINISHED_STATUSES, DispatchEntry, text
from rqdag.shared.store.resolve import resolve_task
from rqdag.shared.store.runs import RunStore
from tests.chaos.chaos_flow import ChaosDag, build_chaos_dag
from tests.chaos.cluster import Cluster, ClusterSettings
from tests.chaos.faults import Faults, Poll, Stats
from tests.chaos.invariants import Observed
from tests.chaos.plan import ChaosConfig, Fault, plan_faults
from tests.support.ledger import read_ledger_noting_problems

POLL_S = 0.1
SAMPLE_RESULTS_S = 0.25
RESOLVER = "chaos-driver"


@dataclass
class Outcome:
    """The end of a scenario: whether the run finished, what was observed, what was done."""

    seed: int
    finished: bool
    stop_reason: str
    observed: Observed
    stats: Stats
    self_exits: list[tuple[str, int | None]]
    diagnostics: str
    folder: Path
    ledger_problems: list[str]

    def summary(self) -> dict[str, Any]:
        """Counts for the report line."""
        by_status: dict[str, int] = {}
        for result in self.observed.results.values():
            by_status[result.status.value] = by_status.get(result.status.value, 0) + 1
        starts = [line for line in self.observed.ledger if line.get("phase") == "start"]
        return {
            "seed": self.seed,
            "finished": self.finished,
            "stop_reason": self.stop_reason,
            "run_status": self.observed.run_status,
            "elapsed_s": round(self.stats.elapsed_s, 1),
            "results": by_status,
            "ledger_starts": len(starts),
            "reruns": sum(n - 1 for n in Counter(str(x["task"]) for x in starts).values()),
            "worker_kills": self.stats.worker_kills,
            "amo_kills": self.stats.amo_kills,
            "worker_terms": self.stats.worker_terms,
            "outages": [
                (mode, round(end - start, 2), len(self.observed.ended_in(start, end)))
                for mode, start, end, _ in self.stats.outages
            ],
            "coordinator_kills": self.stats.coordinator_kills,
            "redis_restarts": self.stats.redis_restarts,
            "in_doubt": sorted(self.observed.in_doubt_seen),
            "resolutions": {k: v.value for k, v in self.observed.resolutions.items()},
            "resolved_when_blocked": self.stats.resolved_when_blocked,
            "self_exits": self.self_exits,
        }


class Scenario:
    """Drives one run to its end (or its deadline) through the fault plan."""

    def __init__(self, cfg: ChaosConfig, server: RedisServer, folder: Path) -> None:
        self.cfg = cfg
        self.server = server
        self.folder = folder
        self.dag: ChaosDag = build_chaos_dag(
            random.Random(f"{cfg.seed}:dag"),
            cfg.tasks,
            at_most_once=cfg.at_most_once,
            flaky=cfg.flaky,
            max_sleep_s=cfg.max_sleep_s,
        )
        self.plan = plan_faults(random.Random(f"{cfg.seed}:plan"), cfg)
        self.rng = random.Random(f"{cfg.seed}:run")  # victims, resolutions, AMO kill moments
        self.ledger = folder / "ledger.jsonl"
        self.cluster = Cluster(
            ClusterSettings(
                url=server.url,
                folder=folder,
                ledger=self.ledger,
                hold=folder / "hold",
                workers=cfg.workers,
                worker_concurrency=cfg.worker_concurrency,
                lease_ttl_s=cfg.lease_ttl_s,
                heartbeat_interval_s=cfg.heartbeat_interval_s,
                shutdown_grace_s=cfg.shutdown_grace_s,
            )
        )
        self.client = connect(server.url)
        self.store = RunStore(self.client)
        self.stats = Stats()
        amo = self.dag.at_most_once
        self.faults = Faults(cfg, server, self.cluster, self.rng, self.stats, self._note, amo, self.ledger)
        self.successes_seen: dict[str, TaskResult] = {}
        self.in_doubt: dict[str, tuple[str, float, TaskStatus]] = {}  # task -> (mode, due, status)
        self.resolutions: dict[str, TaskStatus] = {}
        self._started = 0.0
        self._last_sample = 0.0
        self._fired = 0
        self._signature: object = None
        self._since = 0.0
        self.stop_reason = ""

    # ---- the run ------------------------------------------------------------------------

    def run(self) -> Outcome:
        """Start everything, drive the faults until the run finishes or the deadline passes."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._started = time.monotonic()
        finished = False
        try:
            try:
                self.cluster.start()
                Client(connection=self.client).submit(
                    self.dag.workflow,
                    params=self.dag.params,
                    run_id=self.cfg.run_id,
                    heartbeat_timeout_s=self.cfg.heartbeat_timeout_s,
                )
                finished = self._drive()
            finally:
                self.cluster.stop_all()  # before the ledger is read: no attempt writes to it any more
                self.stats.elapsed_s = time.monotonic() - self._started
            return self._outcome(finished)
        finally:
            self.client.close()

    def _drive(self) -> bool:
        deadline = self._started + self.cfg.deadline_s
        while time.monotonic() < deadline:
            self.cluster.tend()
            poll = self._poll()
            if poll is None:
                time.sleep(POLL_S)
                continue
            if poll.status in FINISHED_STATUSES:
                self._note(f"run {poll.status}")
                return True
            self._watch_in_doubt(poll)
            self.faults.aim_at_at_most_once(poll)
            if not self.plan_done and self._fault_due(self.plan[self._fired], poll):
                self._fired += 1
            if self._stalled(poll):
                self.stop_reason = (
                    f"stuck: nothing changed for {self.cfg.stall_s:g}s (status, results, attempts in flight)"
                )
                break
            time.sleep(POLL_S)
        else:
            self.stop_reason = f"the deadline of {self.cfg.deadline_s:g}s passed"
        self._note(f"{self.stop_reason}; faults fired: {self._fired}/{len(self.plan)}")
        return False

    def _stalled(self, poll: Poll) -> bool:
        """True when the run has not moved for ``stall_s`` (no fault stalls it half as long)."""
        now = time.monotonic()
        signature = (
            self._fired,  # a fault, or a resolution, is the driver acting: not a stall
            len(self.resolutions),
            poll.status,
            len(poll.results),
            tuple(sorted((name, e.token, e.state) for name, e in poll.dispatch.items())),
        )
        if signature != self._signature:
            self._signature, self._since = signature, now
        return now - self._since > self.cfg.stall_s

    @property
    def plan_done(self) -> bool:
        """True once every planned fault has fired."""
        return self._fired >= len(self.plan)

    def _poll(self) -> Poll | None:
        try:
            meta = self.store.read_meta(self.cfg.run_id)
            state = self.store.read_state(self.cfg.run_id)
            lease = text(self.client.get(RunKeys(self.cfg.run_id).lease) or b"")
        except redis.RedisError:
            return None
        poll = Poll(meta.status, state.results, state.dispatch, lease)
        now = time.monotonic()
        if now - self._last_sample >= SAMPLE_RESULTS_S:
            self._last_sample = now
            for name, result in poll.results.items():
                if result.status is TaskStatus.SUCCESS:
                    self.successes_seen.setdefault(name, result)
        return poll

    def _note(self, what: str) -> None:
        wall = time.time()
        clock = time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall % 1 * 1000):03d}"
        self.stats.timeline.append(f"{time.monotonic() - self._started:7.2f}s ({clock}) {what}")

    # ---- in-doubt tasks -------------------------------------------------------------------

    def _watch_in_doubt(self, poll: Poll) -> None:
        """Plan how each new in-doubt task is resolved; resolve those whose moment came.

        A resolution as failure skips the task's dependents at once, which could end
        the run before the fault plan is through: those wait until it is.
        """
        now = time.monotonic()
        for name, result in poll.results.items():
            if result.in_doubt and name not in self.in_doubt:
                mode = "blocked" if self.rng.random() < 0.5 else "delay"
                status = TaskStatus.SUCCESS if self.rng.random() < 0.6 else TaskStatus.FAILURE
                self.in_doubt[name] = (mode, now + self.rng.uniform(0.2, 2.0), status)
                self._note(f"{name} in doubt ({result.message}); resolve {status.value} ({mode})")
        for name, (mode, due, status) in self.in_doubt.items():
            if name in self.resolutions or (status is TaskStatus.FAILURE and not self.plan_done):
                continue
            ready = poll.status == "blocked" if mode == "blocked" else now >= due
            if ready and self._resolve(name, status):
                self.stats.resolved_when_blocked += poll.status == "blocked"

    def _resolve(self, name: str, status: TaskStatus) -> bool:
        data = {"task": name, "resolved": True} if status is TaskStatus.SUCCESS else None
        try:
            resolve_task(
                self.store,
                self.cfg.run_id,
                name,
                status=status,
                data=data,
                reason=f"chaos seed {self.cfg.seed}",
                who=RESOLVER,
            )
        except redis.RedisError:
            return False
        self.resolutions[name] = status
        self._note(f"resolved {name} as {status.value}")
        return True

    # ---- faults ---------------------------------------------------------------------------

    def _fault_due(self, fault: Fault, poll: Poll) -> bool:
        """Fire ``fault`` once its moment has come; True when done.

        Its moment is its threshold of progress, or sooner when the run is blocked
        on in-doubt tasks (nothing progresses until they are resolved).
        """
        now = time.monotonic()
        if fault.due is None:
            if poll.status == "blocked" or len(poll.results) >= fault.threshold * len(self.dag.deps):
                fault.due = now + fault.jitter_s
            return False
        if now < fault.due:
            return False
        if fault.waiting_since is None:
            fault.waiting_since = now
        return self.faults.fire(fault, poll, now - fault.waiting_since)

    # ---- the end ---------------------------------------------------------------------------

    def _outcome(self, finished: bool) -> Outcome:
        ledger, problems = read_ledger_noting_problems(self.ledger)
        meta = self.store.read_meta(self.cfg.run_id)
        state = self.store.read_state(self.cfg.run_id)
        observed = Observed(
            deps=self.dag.deps,
            at_most_once=set(self.dag.at_most_once),
            results=state.results,
            ledger=ledger,
            run_status=meta.status,
            successes_seen=self.successes_seen,
            in_doubt_seen=set(self.in_doubt),
            resolutions=self.resolutions,
            budgets=self.dag.budgets,
            outages=[(o.start, o.end) for o in self.stats.outages],
            stopped={m.proc.pid: m.killed_at for m in self.cluster.members if m.killed_at is not None},
        )
        diagnostics = "" if finished else self._diagnose(state.results, state.dispatch, meta.status)
        outcome = Outcome(
            self.cfg.seed,
            finished,
            self.stop_reason,
            observed,
            self.stats,
            list(self.cluster.self_exits),
            diagnostics,
            self.folder,
            problems,
        )
        (self.folder / "summary.json").write_text(json.dumps(outcome.summary(), indent=2, default=str))
        return outcome

    def _diagnose(
        self, results: dict[str, TaskResult], dispatch: dict[str, DispatchEntry], status: str
    ) -> str:
        """Where each unfinished task stands, in rqdag's dispatch hash and in RQ."""
        lease = text(self.client.get(RunKeys(self.cfg.run_id).lease) or b"")
        lines = [f"run status {status!r}, lease {lease or '(none)'}"]
        missing = [t for t in self.dag.deps if t not in results]
        lines.append(f"{len(missing)} tasks without a result; in flight: {len(dispatch)}")
        for name in missing:
            entry = dispatch.get(name)
            if entry is not None:
                lines.append(f"  {name}: {self._describe_entry(entry)}")
        return "\n".join(lines)

    def _describe_entry(self, entry: DispatchEntry) -> str:
        queue = f"rq:queue:{entry.rq_queue or entry.queue}"
        job = f"rq:job:{entry.job_id}"
        pipe = self.client.pipeline(transaction=False)
        pipe.lpos(queue, entry.job_id)
        pipe.lpos(f"{queue}:intermediate", entry.job_id)
        pipe.hmget(job, ["status", "worker_name", "started_at"])
        in_queue, in_intermediate, (job_status, job_worker, job_started) = pipe.execute()
        dequeued_by = [
            m.name for m in self.cluster.members if entry.job_id in m.log.read_text(errors="replace")
        ]
        return (
            f"attempt {entry.attempt} state {entry.state} worker {entry.worker} job {entry.job_id}: "
            f"queue position {in_queue}, intermediate position {in_intermediate}, "
            f"RQ status {text(job_status or b'-')}, RQ worker {text(job_worker or b'-')}, "
            f"RQ started_at {text(job_started or b'-')}; job named in the logs of {dequeued_by} "
            f"(killed: {[m.name for m in self.cluster.members if m.killed and m.name in dequeued_by]})"
        )
