"""CoordinatorService: drives every active run it can lease, many runs per thread (see .multiplex)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

import redis

from rqdag.coordinator.driver import RunDriver
from rqdag.coordinator.durability import check_redis_durability
from rqdag.coordinator.fleet import SharedFleet
from rqdag.coordinator.lease import DEFAULT_LEASE_TTL_S, LeaseKeeper
from rqdag.coordinator.loop_hooks import LoopHooks
from rqdag.coordinator.multiplex import DriverLoop
from rqdag.coordinator.service_failures import RunFailures
from rqdag.coordinator.wakeup import newest_submission
from rqdag.shared import metrics
from rqdag.shared.episodes import Episode
from rqdag.shared.redis_memory import memory_episode
from rqdag.shared.store import keys
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.records import text
from rqdag.shared.store.retention import DEFAULT_RETENTION_S, ExpirySweeper
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.scripts import Scripts

log = logging.getLogger("rqdag.coordinator")

# Connections of the shared pool: the main thread's (its scans, its submissions watch),
# the hand-overs' wake-ups and one to spare. Each loop has a client of its own
# (multiplex.LOOP_CONNECTIONS) and so has the lease keeper (keeper_client), so no wait
# for a connection can hold a step or a renewal up.
SERVICE_CONNECTIONS = 3
# A loop's round costs what its runs' news costs (see .multiplex), so a loop drives
# thousands; more loops than the interpreter can run at once only add switching
# (10,000 runs: 4 loops, 1,037 us of CPU a task; 8 loops, 1,242 us).
RUNS_PER_LOOP = 2_500
MIN_LOOPS = 2
MAX_LOOPS = 4


def loop_count(max_runs: int) -> int:
    """How many driver loops (threads) a service driving ``max_runs`` at once runs."""
    return max(MIN_LOOPS, min(MAX_LOOPS, -(-max_runs // RUNS_PER_LOOP)))


def pool_size(max_runs: int) -> int:
    """The shared connection pool a service driving ``max_runs`` at once needs so no thread waits
    (its loops have clients of their own: ``max_runs`` only sets how many)."""
    return SERVICE_CONNECTIONS


def coordinator_id() -> str:
    """A name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class CoordinatorService(RunFailures):
    """The long-running ``rqdag coordinator``: many runs at once, each under its own lease.

    Several services may share one Redis: a run is driven by whichever holds its
    lease, and a run whose coordinator died is taken over once the lease expires
    (at once when that coordinator shut down cleanly). Give it a client whose
    pool holds :func:`pool_size` connections (``connect(url, pool_size=...,
    blocking=True)``); its :func:`loop_count` driver loops, each a thread that
    steps many runs (:class:`.multiplex.DriverLoop`), open clients of their own
    from its settings; and a
    ``keeper_client`` of one connection for the lease keeper (without one it
    shares ``client``'s pool).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        owner: str | None = None,
        max_runs: int = 100,
        poll_s: float = 1.0,
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
        retention_s: float = DEFAULT_RETENTION_S,
        keeper_client: redis.Redis | None = None,
    ) -> None:
        """``retention_s``: how long finished runs stay in Redis unless their workflow
        says otherwise (0: forever)."""
        self._client = client
        self._scripts = Scripts.register(client)
        self._store = RunStore(client)
        self.owner = owner or coordinator_id()
        self._max_runs = max_runs
        self._poll_s = poll_s
        self._lease_ttl_s = lease_ttl_s
        self._retention_s = retention_s
        self._sweeper = ExpirySweeper(self._store)
        self._fleet = SharedFleet()  # one read of the worker registry for all the runs' routers
        self._stop = threading.Event()
        hooks = LoopHooks(
            ended=self._ended, failed=self._run_failed, redis_failed=self._redis_failed, claim=self.claim
        )
        keeper = keeper_client or client
        self.keeper = LeaseKeeper(keeper, Scripts.register(keeper), lease_ttl_s, self._stop)
        loops = loop_count(max_runs)
        self._loops = [
            DriverLoop(client, self.owner, hooks, self._stop, self.keeper, index=i) for i in range(loops)
        ]
        self._held: dict[str, DriverLoop] = {}  # run id -> the loop driving it
        self._held_lock = threading.Lock()
        # run id -> (failures in a row, monotonic time before which it is not retried)
        self._backoff: dict[str, tuple[int, float]] = {}
        # fed by the poll loop and by every driver: one line per outage, not one per retry
        self._unreachable = Episode(log, "Redis unreachable", "Redis reachable again")
        self._refusing = Episode(log, "Redis refuses commands", "Redis accepts commands again")
        # ended by a driver's first step (it wrote), never by the poll loop (it only reads)
        self._out_of_memory = memory_episode(log)

    def stop(self) -> None:
        """Ask every driver to hand its lease back and return (safe from a signal handler)."""
        self._stop.set()

    def serve(self) -> None:
        """Drive runs until :meth:`stop`; then wait for the drivers to let go.

        A new run is found at once: the driver loops read the submissions stream,
        which every ``Client.submit`` appends to, and the first to :meth:`claim` a
        run opens it (:mod:`.wakeup`). This thread looks for runs every ``poll_s``
        whatever the loops hear, for a nudge they missed and for runs whose lease
        expired.
        """
        log.info("coordinator %s started", self.owner)
        check_redis_durability(self._client)
        newest = newest_submission(self._client)  # before the first scan: one submitted during it is heard
        for loop in self._loops:
            loop.follow_submissions(newest)
        self.keeper.thread.start()
        for loop in self._loops:
            loop.thread.start()
        try:
            while not self._stop.is_set():
                try:
                    self.step()
                except redis.RedisError as exc:
                    self._redis_failed(exc)
                else:
                    metrics.redis_reconnected(self._unreachable.over())
                    self._refusing.over()
                self._stop.wait(self._poll_s)
        finally:
            self._stop.set()
            for loop in self._loops:
                loop.thread.join(timeout=30)
            self.keeper.thread.join(timeout=30)
            log.info("coordinator %s stopped", self.owner)

    def claim(self, run_id: str, loop: DriverLoop) -> RunDriver | None:
        """A driver of the run just submitted for ``loop`` (which read of it first), with no
        scan or lease read first: its lease acquisition decides (another coordinator may win
        it). None when the run is held here already, backed off from, or ``max_runs`` are
        driven: the scan of the active runs takes it up then.
        """
        if self._backoff.get(run_id, (0, 0.0))[1] > time.monotonic() or not self._reserve(run_id, loop):
            return None
        return self._driver(run_id, loop)

    def step(self) -> list[str]:
        """Hand every active run whose lease is free to a driver loop; returns their ids."""
        with self._held_lock:
            held = set(self._held)
        now = time.monotonic()
        self._sweeper.maybe_sweep(now)
        candidates = [
            r for r in self._store.active_runs() if r not in held and self._backoff.get(r, (0, 0.0))[1] <= now
        ]
        if not candidates:
            return []
        started = []
        mine = f"{self.owner}|"
        for run_id, lease, active in self._leases_of(candidates):
            # A lease of ours with no driver left (it stopped on a Redis error) is taken back at once.
            elsewhere = lease is not None and not text(lease).startswith(mine)
            if elsewhere or not active:
                continue
            loop = min(self._loops, key=DriverLoop.count)
            if not self._reserve(run_id, loop):  # a loop claimed it since the scan, or too many
                continue
            loop.hand(self._driver(run_id, loop))
            started.append(run_id)
        return started

    def _reserve(self, run_id: str, loop: DriverLoop) -> bool:
        """Note that ``loop`` drives ``run_id``, unless one does already or ``max_runs`` are driven.

        The one place a run becomes held, under the lock: the loops' claims and this
        thread's scan never make two drivers of one run here (both would hold its lease).
        """
        with self._held_lock:
            if run_id in self._held or len(self._held) >= self._max_runs:
                return False
            self._held[run_id] = loop
            return True

    def _leases_of(self, runs: list[str]) -> list[tuple[str, bytes | None, bool]]:
        """Each run's lease, then whether it is still active: a run whose driver ended it
        (marked inactive, then its lease handed back) between the scan and this read is
        not taken up again."""
        with self._client.pipeline(transaction=False) as pipe:
            for run_id in runs:
                pipe.get(RunKeys(run_id).lease)
                pipe.sismember(keys.ACTIVE_RUNS, run_id)
            replies = pipe.execute()
        return [(r, replies[2 * i], bool(replies[2 * i + 1])) for i, r in enumerate(runs)]

    def _driver(self, run_id: str, loop: DriverLoop) -> RunDriver:
        """A driver of ``run_id`` for ``loop``, on that loop's own client."""
        return RunDriver(
            loop.client,
            run_id,
            self.owner,
            scripts=loop.scripts,
            lease_ttl_s=self._lease_ttl_s,
            stop=self._stop,
            retention_s=self._retention_s,
            on_started=self._out_of_memory.over,
            fleet=self._fleet,
            server_clock=loop.clock,
            inbox=loop.inbox.key,
        )

    def _ended(self, driver: RunDriver) -> None:
        """A loop let a run go: it ended, another coordinator has it, or this one stops."""
        with self._held_lock:
            self._held.pop(driver.run_id, None)
        self._backoff.pop(driver.run_id, None)
        if driver.found_ended:
            log.debug("run '%s' had already ended (%s)", driver.run_id, driver.outcome)
        elif driver.outcome is not None:
            log.info("run '%s' %s", driver.run_id, driver.outcome)

    def _run_failed(self, run_id: str, exc: Exception) -> None:
        """A run's step raised: back off from it, and say why once per episode or per run."""
        with self._held_lock:
            self._held.pop(run_id, None)
        self._classify(run_id, exc)
