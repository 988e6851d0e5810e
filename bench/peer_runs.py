"""Section 6, peers: bounded repetitions of a peer's run, and the rows they make.

A peer's figure goes in the table's reference column, named by the peer and its
version; the rqdag column stays empty, since rqdag's figures for the same shapes
are the rows of sections 1 and 2 of the same run.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.config import Config
from bench.drive import Timing
from bench.machine import version
from bench.peers import SECTION
from bench.session import series_of
from bench.stats import Row

PEER_BOUND_S = 120.0  # one peer run; past it the run is stopped and reported as not finished


def bound_s(config: Config) -> float:
    """The time bound of one peer run: the suite's run bound, at most ``PEER_BOUND_S``."""
    return min(config.run_bound_s, PEER_BOUND_S)


def repeat(reps: int, run_once: Callable[[], Timing], restart: Callable[[], None]) -> list[Timing]:
    """``run_once`` ``reps`` times; a run that hits its bound ends the series and restarts the workers.

    Such a run is the result (the next would hit the bound too), and its workers
    still hold the rest of its work.
    """
    timings: list[Timing] = []
    for _ in range(reps):
        timing = run_once()
        timings.append(timing)
        if not timing.finished:
            restart()
            break
    return timings


def peer_row(
    peer: str,
    measure: str,
    unit: str,
    timings: list[Timing],
    metric: Callable[[Timing], float],
    note: str = "",
    *,
    counted: bool = True,
) -> Row:
    """One peer figure: ``metric`` over ``timings``, with how far an unfinished run got.

    ``counted``: the peer tells how many tasks an unfinished run had done.
    """
    unfinished = [t for t in timings if not t.finished]
    if unfinished:
        stuck = unfinished[0]
        got = f"{stuck.done:,} of {stuck.total:,} done" if counted else "how far it got is not known"
        bound = f"did not finish within {stuck.seconds:g} s: {got}"
        note = f"{note}; {bound}" if note else bound
    return Row(
        section=SECTION,
        measure=f"{peer}: {measure}",
        unit=unit,
        rqdag=None,
        reference=series_of(timings, metric),
        reference_name=f"{peer} {version(peer.lower())}",
        note=note,
    )
