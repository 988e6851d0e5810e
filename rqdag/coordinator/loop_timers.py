"""When each run of a driver loop needs its next step: now, or at a time (a heap)."""

from __future__ import annotations

import heapq

NEVER = float("inf")
COMPACT_FACTOR = 4  # the heap is rebuilt when it holds this many times more entries than runs


class DueTimes:
    """The next step of each run: at once (its events came) or at a monotonic time.

    A run's time is the one last set; older entries for it stay in the heap
    until they reach the top and are dropped there (or the heap is rebuilt).
    """

    def __init__(self) -> None:
        self._due: dict[str, float] = {}
        self._now: set[str] = set()
        self._heap: list[tuple[float, str]] = []

    def set(self, run_id: str, due: float) -> None:
        """Step ``run_id`` at ``due`` (0: at once)."""
        self._due[run_id] = due
        if due <= 0.0:
            self._now.add(run_id)
            return
        heapq.heappush(self._heap, (due, run_id))
        if len(self._heap) > COMPACT_FACTOR * len(self._due) + 1_000:
            self._heap = [(when, run) for run, when in self._due.items() if when > 0.0]
            heapq.heapify(self._heap)

    def now(self, run_id: str) -> None:
        """Step ``run_id`` at once."""
        self.set(run_id, 0.0)

    def drop(self, run_id: str) -> None:
        """Forget ``run_id`` (it left the loop)."""
        self._due.pop(run_id, None)
        self._now.discard(run_id)

    def soonest(self) -> float:
        """The earliest time a run is due (0: one is due at once; NEVER: none)."""
        if self._now:
            return 0.0
        heap = self._heap
        while heap and self._due.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else NEVER

    def pop_due(self, now: float) -> list[str]:
        """The runs due by ``now``, each once (set their next time after stepping them)."""
        due, self._now = self._now, set()
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, run_id = heapq.heappop(heap)
            if self._due.get(run_id) == when:
                due.add(run_id)
        for run_id in due:
            self._due[run_id] = NEVER  # until set again after its step
        return list(due)


def block_ms(block_s: float) -> int:
    """XREAD's BLOCK for a wait of ``block_s``: at least 1 ms, as BLOCK 0 waits for an entry
    however long that takes (a loop due again in under a millisecond would hang)."""
    return max(int(block_s * 1000), 1)
