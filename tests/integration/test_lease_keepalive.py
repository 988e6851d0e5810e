"""A coordinator keeps its lease through a load that lasts longer than the lease TTL."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

import rqdag.coordinator.driver as driver_module
from rqdag.client import Client
from rqdag.coordinator.driver import RunDriver
from rqdag.coordinator.lease import Lease
from rqdag.errors import LeaseLostError
from rqdag.shared.model.task import TaskStatus
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.scripts import Scripts
from tests.integration.flows import fifty
from tests.support.processes import Procs

TTL_S = 1.0


def leased(redis_url: str, run_id: str) -> tuple[redis.Redis, Lease]:
    client = Client(redis_url)
    client.submit(fifty, params={"sleep_s": 0.0}, run_id=run_id)
    lease = Lease(client.connection, Scripts.register(client.connection), run_id, "test", ttl_s=TTL_S)
    assert lease.acquire()
    return client.connection, lease


def test_a_lease_outlives_its_ttl_while_kept_alive_and_expires_without(redis_url: str) -> None:
    conn, lease = leased(redis_url, "kept")
    with lease.kept_alive():
        time.sleep(4 * TTL_S)  # a step that cannot stop to renew
    assert conn.get(lease.key) == lease.value.encode()
    time.sleep(4 * TTL_S)  # no keeper any more: the lease expires
    assert conn.get(lease.key) is None
    with pytest.raises(LeaseLostError):
        lease.renew_if_due()


def test_a_lease_taken_during_the_step_is_reported_after_it(redis_url: str) -> None:
    conn, lease = leased(redis_url, "stolen")
    with pytest.raises(LeaseLostError, match="lease lost"), lease.kept_alive():
        conn.set(lease.key, "other|99", px=60_000)
        time.sleep(2 * TTL_S)
    assert conn.get(lease.key) == b"other|99", "the keeper never overwrites another holder"


def test_a_run_whose_load_outlasts_the_lease_ttl_is_still_driven(
    redis_url: str, procs: Procs, monkeypatch: pytest.MonkeyPatch
) -> None:
    procs.worker(redis_url, name="w1")
    client = Client(redis_url)
    run = client.submit(fifty, params={"sleep_s": 0.0}, run_id="slow-load")
    real = driver_module.rebuild

    def slow_rebuild(*args: Any, **kwargs: Any) -> Any:
        time.sleep(4 * TTL_S)  # stands for the load of a very large run
        return real(*args, **kwargs)

    monkeypatch.setattr(driver_module, "rebuild", slow_rebuild)
    status = RunDriver(client.connection, run.run_id, "slow", lease_ttl_s=TTL_S).drive()
    assert status == "succeeded"
    results = RunStore(client.connection).read_state(run.run_id).results
    assert len(results) == 50 and all(r.status is TaskStatus.SUCCESS for r in results.values())


def test_the_keeper_renews_many_leases_in_batches_and_reports_the_lost_ones(redis_url: str) -> None:
    import queue
    import threading

    from rqdag.coordinator.lease import RENEW_BATCH, LeaseKeeper

    client = Client(redis_url)
    conn, scripts = client.connection, Scripts.register(client.connection)
    leases = []
    for i in range(2 * RENEW_BATCH + 5):  # more than two script runs' worth
        client.submit(fifty, params={"sleep_s": 0.0}, run_id=f"many-{i}")
        lease = Lease(conn, scripts, f"many-{i}", "keeper-test", ttl_s=TTL_S if i % 2 else 2 * TTL_S)
        assert lease.acquire()
        leases.append(lease)
    keeper = LeaseKeeper(conn, scripts, TTL_S, threading.Event())
    lost: queue.SimpleQueue[Lease] = queue.SimpleQueue()
    for lease in leases:
        keeper.hold(lease, lost)
    stolen = leases[7]
    conn.set(stolen.key, "thief|99")  # another coordinator holds this one now
    for _ in range(8):  # 4 TTLs: every lease would have expired without its renewals
        keeper.renew_due(time.monotonic() + TTL_S)
        time.sleep(TTL_S / 2)
    assert stolen.lost and lost.get_nowait() is stolen and lost.empty()
    kept = [lease for lease in leases if lease is not stolen]
    assert all(conn.get(lease.key) == lease.value.encode() for lease in kept)
    assert conn.get(stolen.key) == b"thief|99"
    keeper.renew_due(time.monotonic() + 10 * TTL_S)  # every lease due: each renewed to its own TTL
    longer = [conn.pttl(lease.key) > TTL_S * 1000 for lease in kept]
    assert longer == [lease.ttl_s == 2 * TTL_S for lease in kept]
