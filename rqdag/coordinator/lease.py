"""The run lease: one coordinator at a time drives a run, fenced by an increasing token."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from rqdag.errors import LeaseLostError, RunNotFoundError
from rqdag.shared import metrics
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.scripts import LeaseRefusal, Scripts

log = logging.getLogger("rqdag.coordinator")

DEFAULT_LEASE_TTL_S = 10.0
KEEPER_CHUNK = 1_000  # renewals sent in one pipeline
RENEW_BATCH = 100  # renewals in one script run (each a GET and a PEXPIRE)


class Lease:
    """The lease of one run as held by one coordinator (``owner``).

    The value stored is ``"owner|fence"``; the fence grows on every takeover, so
    a coordinator that was paused past the TTL cannot write with an old value.
    """

    def __init__(
        self,
        client: redis.Redis,
        scripts: Scripts,
        run_id: str,
        owner: str,
        ttl_s: float = DEFAULT_LEASE_TTL_S,
        inbox: str = "",
    ) -> None:
        """``inbox``: the stream the holder's driver loop reads the run's news from ('' : the
        holder reads the run's events stream itself)."""
        self._client = client
        self.inbox = inbox
        self._scripts = scripts
        self._keys = RunKeys(run_id)
        self.run_id = run_id
        self.owner = owner
        self.ttl_s = ttl_s
        self.fence = 0
        self._renewed_at = 0.0
        self.kept = False  # a LeaseKeeper renews it: renew_if_due only reports a loss it found
        self.lost = False
        self._writes = threading.Lock()  # held while the run writes under WATCH of the lease key
        self._taken: tuple[str | None] | None = None  # (the previous driver): taken, not announced yet

    @property
    def value(self) -> str:
        """The stored lease value this coordinator holds."""
        return f"{self.owner}|{self.fence}"

    @property
    def run_keys(self) -> RunKeys:
        """The keys of the leased run."""
        return self._keys

    @property
    def key(self) -> str:
        """The Redis key of the lease."""
        return self._keys.lease

    def acquire(self) -> bool:
        """Take the lease if free (or already ours); False when another owner holds it.

        Taking it (a fence this object did not hold) also names this coordinator as the
        run's driver, in the same step; :meth:`announce` then logs from whom it took the run.
        """
        got = self._scripts.acquire_lease(
            self._keys, owner=self.owner, ttl_ms=int(self.ttl_s * 1000), known=self.fence, inbox=self.inbox
        )
        if got is LeaseRefusal.NO_RUN:
            raise RunNotFoundError(f"no run '{self.run_id}'")
        if got is LeaseRefusal.HELD_ELSEWHERE:
            return False
        assert not isinstance(got, LeaseRefusal)
        self.fence, self.lost = got.fence, False
        self._renewed_at = time.monotonic()
        if got.noted:
            self._taken = (got.previous,)
        return True

    def announce(self) -> None:
        """Log that this coordinator drives the run now (once per taking): from whom it took
        it, under which fence. Its driver calls it once it found the run still to drive."""
        if self._taken is None:
            return
        (previous,), self._taken = self._taken, None
        metrics.lease_acquired(taken_over=previous is not None and previous != self.owner)
        if previous is None or previous == self.owner:
            again = " again" if previous == self.owner else ""
            log.info(
                "run '%s': coordinator %s drives it%s (fence %d)", self.run_id, self.owner, again, self.fence
            )
        else:
            log.info(
                "run '%s': coordinator %s took it over from %s (fence %d)",
                self.run_id,
                self.owner,
                previous,
                self.fence,
            )

    def renew_if_due(self, now: float | None = None) -> None:
        """Renew when a third of the TTL has passed; raises LeaseLostError if lost."""
        if self.lost:
            raise LeaseLostError(f"run '{self.run_id}': lease lost by {self.owner} (fence {self.fence})")
        now = time.monotonic() if now is None else now
        if self.kept or now - self._renewed_at < self.ttl_s / 3:
            return
        renewed = self._scripts.renew_lease(self._keys, lease=self.value, ttl_ms=int(self.ttl_s * 1000))
        if not renewed:
            raise LeaseLostError(f"run '{self.run_id}': lease lost by {self.owner} (fence {self.fence})")
        self._renewed_at = now

    def due(self, now: float) -> bool:
        """True when a third of the TTL has passed since the last renewal."""
        return now - self._renewed_at >= self.ttl_s / 3

    def renewed(self, now: float) -> None:
        """A batch (:func:`renew_leases`) renewed this lease at ``now``."""
        self._renewed_at = now

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold off a :class:`LeaseKeeper`'s renewal while the body writes under ``WATCH`` of
        the lease key: a renewal touches the key, which would abort the write's EXEC."""
        with self._writes:
            yield

    @contextmanager
    def kept_alive(self) -> Iterator[None]:
        """Renew the lease from a helper thread while the body runs.

        For a long step that cannot stop to renew (loading a run of millions of
        tasks takes longer than the TTL). Raises LeaseLostError after the body
        when the lease was lost meanwhile.
        """
        if self.kept:  # its keeper renews it whatever the body does
            yield
            self.renew_if_due()
            return
        stop = threading.Event()
        lost: list[LeaseLostError] = []

        def keep() -> None:
            while not stop.wait(self.ttl_s / 3):
                try:
                    self.renew_if_due()
                except LeaseLostError as exc:
                    lost.append(exc)
                    return
                except redis.RedisError as exc:  # tried again until the TTL runs out
                    log.warning("run '%s': could not renew the lease: %s", self.run_id, exc)

        keeper = threading.Thread(target=keep, name=f"rqdag-lease-{self.run_id}", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            stop.set()
            keeper.join()
        if lost:
            raise lost[0]
        self.renew_if_due()

    def release(self) -> None:
        """Hand the lease back now so a successor need not wait for the TTL."""
        try:
            self._scripts.release_lease(self._keys, lease=self.value)
        except redis.RedisError as exc:
            log.warning("run '%s': could not release lease: %s", self.run_id, exc)


def renew_leases(client: redis.Redis, scripts: Scripts, leases: list[Lease], now: float) -> list[Lease]:
    """Renew the leases that are due, RENEW_BATCH in one script run, all in one round trip;
    returns those that were lost.

    A batch whose renewal failed with an error (Redis full, busy) is left due:
    the next round tries it again, and a run whose lease ran out meanwhile is lost.
    """
    by_ttl: dict[float, list[Lease]] = {}
    for lease in leases:
        if lease.due(now):
            by_ttl.setdefault(lease.ttl_s, []).append(lease)
    lost: list[Lease] = []
    for ttl_s, due in by_ttl.items():
        batches = [due[i : i + RENEW_BATCH] for i in range(0, len(due), RENEW_BATCH)]
        replies = scripts.renew_leases.many(
            [[(lease.run_keys, lease.value) for lease in batch] for batch in batches],
            ttl_ms=int(ttl_s * 1000),
            client=client,
        )
        lost += _renewed(batches, replies, now)
    return lost


def _renewed(batches: list[list[Lease]], replies: list[list[bool] | Exception], now: float) -> list[Lease]:
    """Note the renewals of ``batches`` (their ``replies``); the leases found lost."""
    lost = []
    for batch, reply in zip(batches, replies, strict=True):
        if isinstance(reply, Exception):
            log.warning("could not renew the leases of %d runs: %s", len(batch), reply)
            continue
        for lease, renewed in zip(batch, reply, strict=True):
            if renewed:
                lease.renewed(now)
            else:
                lost.append(lease)
    return lost


class LeaseKeeper:
    """One thread that renews every lease a coordinator's loops hold, however busy they are.

    A loop stepping thousands of runs cannot promise to come back within a third
    of the TTL; this thread does nothing else, so a live coordinator never lets a
    lease run out. A lease it finds lost is marked (:attr:`Lease.lost`: the run's
    next step raises LeaseLostError) and put on its holder's ``lost`` queue. A
    lease not acquired yet (fence 0) waits until it is.
    """

    def __init__(self, client: redis.Redis, scripts: Scripts, ttl_s: float, stop: threading.Event) -> None:
        self._client = client
        self._scripts = scripts
        self._period_s = ttl_s / 6  # a lease is renewed between a third and a half of its TTL
        self._stop = stop
        self._held: dict[Lease, queue.SimpleQueue[Lease]] = {}
        self._lock = threading.Lock()
        self.renewals = 0
        self.thread = threading.Thread(target=self._serve, name="rqdag-lease-keeper", daemon=True)

    def hold(self, lease: Lease, lost: queue.SimpleQueue[Lease]) -> None:
        """Renew ``lease`` from now on (once acquired); a loss goes on ``lost``."""
        lease.kept = True
        with self._lock:
            self._held[lease] = lost

    def drop(self, lease: Lease) -> None:
        """Stop renewing ``lease`` (its run ended or was let go)."""
        with self._lock:
            self._held.pop(lease, None)

    def __len__(self) -> int:
        return len(self._held)

    def _serve(self) -> None:
        while not self._stop.wait(self._period_s):
            try:
                self.renew_due(time.monotonic())
            except redis.RedisError as exc:  # the leases stay due: tried again at the next tick
                log.warning("could not renew the leases: %s", exc)

    def renew_due(self, now: float) -> list[Lease]:
        """Renew every held lease that is due, in pipelines; returns those found lost."""
        with self._lock:
            due = [(lease, sink) for lease, sink in self._held.items() if lease.fence and lease.due(now)]
        found: list[Lease] = []
        for start in range(0, len(due), KEEPER_CHUNK):
            found += self._renew(due[start : start + KEEPER_CHUNK])
        return found

    def _renew(self, chunk: list[tuple[Lease, queue.SimpleQueue[Lease]]]) -> list[Lease]:
        """Renew the leases of ``chunk`` whose run is not writing under WATCH (the others
        stay due: the next tick renews them)."""
        free = [(lease, sink) for lease, sink in chunk if lease._writes.acquire(blocking=False)]
        try:
            leases = [lease for lease, _ in free]
            lost = renew_leases(self._client, self._scripts, leases, time.monotonic())
        finally:
            for lease, _ in free:
                lease._writes.release()
        self.renewals += len(leases) - len(lost)
        sinks = {id(lease): sink for lease, sink in free}
        for lease in lost:  # told once: it is not renewed again
            lease.lost = True
            self.drop(lease)
            sinks[id(lease)].put(lease)
        return lost
