"""Runs the selected sections in an order that needs few worker pools, and collects their rows."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from bench import (
    chain,
    fanin,
    logcapture,
    manyruns,
    mapped,
    memory,
    overhead,
    peers,
    resume,
    slots,
    submit,
    throughput,
)
from bench.config import Config
from bench.pools import WorkerPool
from bench.server import BenchRedis
from bench.session import Session
from bench.stats import Row, SectionResult

TITLES = {
    "throughput": throughput.SECTION,
    "chain": chain.SECTION,
    "fanin": fanin.SECTION,
    "resume": resume.SECTION,
    "overhead": overhead.SECTION,
    "peers": peers.SECTION,
    "memory": memory.SECTION,
    "manyruns": manyruns.SECTION,
    "submit": submit.SECTION,
    "logs": logcapture.SECTION,
    "slots": slots.SECTION,
    "map": mapped.SECTION,
}


class AddRows(Protocol):
    """Adds a section's rows (and notes) to the results, each row said on the progress line."""

    def __call__(self, key: str, rows: list[Row], notes: Sequence[str] = ()) -> None: ...


class Progress:
    """One line on stderr per step, with the time since the start."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.start:6.1f}s] {message}", file=sys.stderr, flush=True)


def run_suite(config: Config, bench: BenchRedis, progress: Callable[[str], None]) -> list[SectionResult]:
    """Every selected section, in section order."""
    results = {key: SectionResult(key, TITLES[key]) for key in TITLES if key in config.sections}
    session = Session(config, bench)

    def add(key: str, rows: list[Row], notes: Sequence[str] = ()) -> None:
        results[key].rows.extend(rows)
        results[key].notes.extend(notes)
        for row in rows:
            ours = row.rqdag.format() if row.rqdag else "-"
            theirs = row.reference.format() if row.reference else row.reference_name
            ratio = row.ratio.format() if row.ratio else "-"
            progress(
                f"{row.section} | {row.measure}: rqdag {ours}, reference {theirs} {row.unit}, ratio {ratio}"
            )

    try:
        if "resume" in results:
            progress("4. resume (no workers)")
            add("resume", resume.measure(session), resume.NOTES)
        _with_base_pools(session, results, add, progress)
        if "overhead" in results:
            progress(f"5. overhead ({config.workers} counted workers each side)")
            add("overhead", overhead.measure(session))
        if "throughput" in results:
            for count in config.extra_workers:
                progress(f"1. throughput with {count} workers each side")
                with WorkerPool(bench, "rqdag", count), WorkerPool(bench, "raw", count):
                    session.warm_up()
                    add("throughput", [throughput.measure(session, config.extra_width, count)])
        if "slots" in results:
            add("slots", slots.measure(session, progress))
    finally:
        session.close()
    if "peers" in results:  # last: every worker pool above is closed
        results["peers"].skipped = peers.skip_reason()
        if results["peers"].skipped is None:
            add("peers", peers.measure(bench, config, progress))
        else:
            progress(f"6. peers skipped: {results['peers'].skipped}")
    return list(results.values())


def _with_base_pools(
    session: Session,
    results: dict[str, SectionResult],
    add: AddRows,
    progress: Callable[[str], None],
) -> None:
    """Sections 1-3 and 7-11 at the base worker count, on one pair of pools."""
    config = session.config
    keys = [
        k
        for k in ("throughput", "chain", "fanin", "memory", "manyruns", "submit", "logs", "map")
        if k in results
    ]
    if not keys:
        return
    count = config.workers
    with WorkerPool(session.bench, "rqdag", count), WorkerPool(session.bench, "raw", count) as raw_pool:
        session.warm_up()
        wide = None
        if "throughput" in results:
            progress(f"1. throughput, {count} workers each side")
            wide = throughput.measure(session, config.width, count)
            add("throughput", [wide])
        if "chain" in results:
            progress(f"2. chain latency, {count} workers each side")
            add("chain", [chain.measure(session, config.chain, count)])
        if "fanin" in results:
            progress(f"3. fan-in, {count} workers each side")
            row = fanin.measure(session, config.fanin, count, raw_pool)
            add("fanin", [row] if wide is None else [row, fanin.rate_row(row, wide, config.fanin)])
        if "memory" in results:
            progress(f"7. memory per finished run, {config.memory_runs} runs")
            add("memory", memory.measure(session, config.memory_runs), memory.NOTES)
        if "manyruns" in results:
            progress(f"8. many concurrent runs: {', '.join(f'{n:,}' for n in config.many_runs)}")
            add("manyruns", manyruns.measure(session, config.many_runs), manyruns.NOTES)
        if "submit" in results:
            progress(f"9. submit latency, {config.submit_runs} one-task runs each way")
            add("submit", submit.measure(session, config.submit_runs), submit.NOTES)
        if "logs" in results:
            progress(f"10. log capture on (the base pool) and off ({count} more workers)")
            add("logs", logcapture.measure(session, config.logs_width, count))
        if "map" in results:
            progress(f"12. map: 1 -> {config.map_width:,} children -> 1; expanding {config.map_expand:,}")
            add("map", mapped.measure(session, config.map_width, count, config.map_expand), mapped.NOTES)
