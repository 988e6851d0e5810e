"""SharedFleet: a coordinator's runs share one read of the worker registry."""

from __future__ import annotations

import time
from collections.abc import Mapping

import redis

from rqdag.coordinator.fleet import SharedFleet
from rqdag.shared.store.workers import Fleet


def test_the_routers_of_many_runs_share_one_read_until_it_is_stale() -> None:
    seen: list[Mapping[str, frozenset[str]]] = []

    def read(client: redis.Redis, known: Mapping[str, frozenset[str]]) -> Fleet:
        seen.append(dict(known))
        return Fleet((), {**known, f"p{len(seen)}": frozenset({"f"})})

    fleet = SharedFleet(max_age_s=0.05, read=read)
    client = redis.Redis()  # never connected: the reader is the one that would use it
    first = [fleet(client, {}) for _ in range(1_000)]
    assert len(seen) == 1 and all(f is first[0] for f in first)
    time.sleep(0.06)
    again = fleet(client, {"mine": frozenset({"g"})})
    assert fleet.reads == 2 and again.functions.keys() == {"p1", "mine", "p2"}
    assert seen[1] == {"mine": frozenset({"g"}), "p1": frozenset({"f"})}  # both sides' profiles kept
