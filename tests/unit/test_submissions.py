"""The submissions stream's entries, as a driver loop reads them."""

from __future__ import annotations

from rqdag.coordinator.wakeup import SubmissionWatch
from rqdag.shared.store.submissions import announced_runs


def test_entries_name_their_runs_oldest_first_each_once() -> None:
    entries = [(b"1-0", {b"run": b"a"}), (b"2-0", {b"run": b"b"}), (b"3-0", {b"run": b"a"}), (b"4-0", {})]
    assert announced_runs(entries) == ["a", "b"]


def test_a_watch_reads_on_after_what_it_took() -> None:
    watch = SubmissionWatch(b"0-0")
    assert watch.take([(b"5-0", {b"run": b"r1"}), (b"6-1", {b"run": b"r2"})]) == ["r1", "r2"]
    assert watch.last == b"6-1"
    assert watch.take([]) == [] and watch.last == b"6-1"
