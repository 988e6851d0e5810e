"""The command line of the suite: ``python -m bench [--quick] [options]``."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from bench import report
from bench.config import BENCH_DIR, FULL, QUICK, SECTIONS, Config
from bench.machine import Machine
from bench.server import BenchRedis
from bench.suite import Progress, run_suite


def _counts(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def _sections(text: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown section(s) {unknown}; known: {', '.join(SECTIONS)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    """The options; every size defaults to the full-size (or ``--quick``) value."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="tiny sizes for CI; prints, writes no RESULTS.md")
    p.add_argument("--sections", type=_sections, help=f"comma-separated subset of: {', '.join(SECTIONS)}")
    p.add_argument("--reps", type=int, help="repetitions of every measure (default 3)")
    p.add_argument("--workers", type=int, help="worker processes each side (default 2)")
    p.add_argument("--extra-workers", type=_counts, help="more worker counts for throughput ('' for none)")
    p.add_argument("--extra-width", type=int, help="wide DAG width with the extra worker counts")
    p.add_argument("--width", type=int, help="1: width of the wide DAG")
    p.add_argument("--chain", type=int, help="2: tasks in the chain")
    p.add_argument("--fanin", type=int, help="3: width of the fan-in")
    p.add_argument(
        "--fanin-bound", type=float, dest="fanin_bound_s", help="3: seconds before a run is stopped"
    )
    p.add_argument("--resume", type=int, help="4: tasks of the resumed run")
    p.add_argument("--resume-small", type=int, help="4: the smaller size scaling is measured against")
    p.add_argument("--resume-million", action="store_true", default=None, help="4: also 1,000,000 tasks")
    p.add_argument("--overhead-width", type=int, help="5: width of the counted wide DAG")
    p.add_argument("--overhead-chain", type=int, help="5: length of the counted chain")
    p.add_argument("--memory-runs", type=int, help="7: finished runs whose memory is measured")
    p.add_argument("--many-runs", type=_counts, help="8: runs at once, one size each (default 100,1000)")
    p.add_argument("--submit-runs", type=int, help="9: one-task runs per way and repetition (default 200)")
    p.add_argument("--logs-width", type=int, help="10: width of the wide DAG run with log capture on and off")
    p.add_argument("--map-width", type=int, help="12: children of the mapped fan-out (default 10,000)")
    p.add_argument("--map-expand", type=int, help="12: children of the timed expansion (default 100,000)")
    p.add_argument("--appendonly", action="store_true", default=None, help="Redis with AOF (everysec)")
    p.add_argument("--out", type=Path, dest="out_dir", help=f"folder for RESULTS.md (default {BENCH_DIR})")
    p.add_argument("--no-write", action="store_true", help="print the table only")
    p.add_argument("--json", type=Path, dest="json_path", help="also write the results as JSON here")
    return p


def parse_config(argv: list[str] | None) -> Config:
    """Options on top of the full-size or quick defaults."""
    args = build_parser().parse_args(argv)
    base = QUICK if args.quick else FULL
    given = {k: v for k, v in vars(args).items() if v is not None and k not in ("quick", "no_write")}
    config = replace(base, **given)
    if args.no_write:
        config = replace(config, out_dir=None)
    if (
        config.reps < 1
        or config.workers < 1
        or config.resume_small >= config.resume
        or config.resume_small < 4
        or config.memory_runs < 1
        or not config.many_runs
        or min(config.many_runs) < 1
        or config.submit_runs < 1
    ):
        raise SystemExit(
            "need reps >= 1, workers >= 1, memory-runs >= 1, many-runs >= 1, submit-runs >= 1 and "
            "4 <= resume-small < resume"
        )
    return config


def main(argv: list[str] | None = None) -> int:
    """Run the suite, print the table, write RESULTS.md (and JSON when asked)."""
    config = parse_config(argv)
    progress = Progress()
    machine = Machine.collect()
    progress(
        f"rqdag benchmarks, {config.mode} size, {config.reps} repetitions; sections: "
        f"{', '.join(config.sections)}"
    )
    started = time.monotonic()
    with BenchRedis(appendonly=config.appendonly) as bench:
        redis_live = bench.version()
        sections = run_suite(config, bench, progress)
    duration = time.monotonic() - started
    text = report.markdown(config, machine, redis_live, sections, duration)
    print(report.table(sections))
    if config.out_dir is not None:
        config.out_dir.mkdir(parents=True, exist_ok=True)
        (config.out_dir / "RESULTS.md").write_text(text)
        progress(f"wrote {config.out_dir / 'RESULTS.md'}")
    if config.json_path is not None:
        config.json_path.parent.mkdir(parents=True, exist_ok=True)
        config.json_path.write_text(report.to_json(config, machine, sections, duration))
    return 0


if __name__ == "__main__":
    sys.exit(main())
