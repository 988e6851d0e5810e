"""A driver loop's due times: each run stepped once when due, at its latest time only; and
the blocking read's wait until the soonest."""

from __future__ import annotations

from rqdag.coordinator.loop_timers import NEVER, DueTimes, block_ms


def test_runs_come_due_in_time_order_at_their_latest_time_only() -> None:
    due = DueTimes()
    assert due.soonest() == NEVER
    due.set("a", 5.0)
    due.set("b", 3.0)
    due.set("a", 9.0)  # moved later: its 5.0 no longer counts
    assert due.soonest() == 3.0
    assert due.pop_due(6.0) == ["b"]
    assert due.soonest() == 9.0
    due.now("c")
    assert due.soonest() == 0.0
    assert sorted(due.pop_due(10.0)) == ["a", "c"]
    assert due.pop_due(100.0) == [], "a run stepped waits until its next time is set"


def test_a_dropped_run_never_comes_due_and_the_heap_stays_bounded() -> None:
    due = DueTimes()
    due.set("gone", 1.0)
    due.now("gone")
    due.drop("gone")
    assert due.pop_due(2.0) == [] and due.soonest() == NEVER
    for i in range(20_000):  # one run rescheduled many times: old entries are compacted away
        due.set("busy", float(i + 1))
    assert len(due._heap) < 2_000
    assert due.pop_due(20_000.0) == ["busy"]


def test_a_loop_due_again_within_a_millisecond_still_blocks_for_a_bounded_time() -> None:
    # BLOCK 0 is XREAD's "wait for an entry however long": a wait under 1 ms must not become it
    assert block_ms(0.0007) == 1
    assert block_ms(0.0) == 1
    assert block_ms(0.25) == 250
