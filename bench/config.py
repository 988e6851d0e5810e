"""The sizes and settings of one run of the suite: full size, or ``--quick`` for CI."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

SECTIONS = (
    "throughput",
    "chain",
    "fanin",
    "resume",
    "overhead",
    "peers",
    "memory",
    "manyruns",
    "submit",
    "logs",
    "slots",
    "map",
)
BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent


@dataclass(frozen=True)
class Config:
    """What to run, how big, how often."""

    quick: bool = False
    sections: tuple[str, ...] = SECTIONS
    reps: int = 3
    workers: int = 2
    extra_workers: tuple[int, ...] = (4, 8)
    extra_width: int = 5_000  # 1: the wide DAG's width with the extra worker counts
    width: int = 10_000  # 1: the wide DAG is 1 -> width -> 1
    chain: int = 1_000  # 2: tasks in the chain
    fanin: int = 5_000  # 3: 1 -> fanin -> 1
    fanin_bound_s: float = 120.0  # 3: a reference that takes longer is stopped: "did not finish"
    resume: int = 100_000  # 4: tasks of the resumed run
    resume_small: int = 10_000  # 4: the smaller size the scaling is measured against
    resume_million: bool = False  # 4: also 1,000,000 tasks
    overhead_width: int = 2_000  # 5: wide DAG whose commands are counted
    overhead_chain: int = 200  # 5: chain whose commands are counted
    memory_runs: int = 100  # 7: finished runs whose memory is measured
    many_runs: tuple[int, ...] = (100, 1_000, 10_000)  # 8: runs at once, each on a coordinator --max-runs N
    many_runs_large: int = 10_000  # 8: a size this large or more is measured once (minutes a repetition)
    submit_runs: int = 200  # 9: one-task runs submitted one after another, per way and repetition
    logs_width: int = 2_000  # 10: the wide DAG run with log capture on and off
    slots_processes: int = 2  # 11: concurrent worker processes
    slots_noop: int = 8  # 11: slots per process for the no-op fan-out (width: ``width``)
    slots_sleep: int = 50  # 11: slots per process for the sleeping tasks
    slots_sleep_tasks: int = 1_000  # 11: tasks that each sleep 0.1 s
    map_width: int = 10_000  # 12: mapped fan-out 1 -> map_width children -> 1, against the wide DAG
    map_expand: int = 100_000  # 12: children of the timed expansion
    run_bound_s: float = 600.0  # any single measured run: a safety net, not a result
    appendonly: bool = False
    out_dir: Path | None = BENCH_DIR  # where RESULTS.md goes; None: print only
    json_path: Path | None = None

    @property
    def mode(self) -> str:
        """``quick`` or ``full``."""
        return "quick" if self.quick else "full"


FULL = Config()

QUICK = replace(
    FULL,
    quick=True,
    extra_workers=(),
    extra_width=200,
    width=200,
    chain=50,
    fanin=50,
    fanin_bound_s=30.0,
    resume=1_000,
    resume_small=100,
    overhead_width=100,
    overhead_chain=20,
    memory_runs=10,
    many_runs=(10, 30),
    submit_runs=10,
    logs_width=50,
    slots_sleep_tasks=100,
    slots_sleep=10,
    map_width=200,
    map_expand=10_000,
    run_bound_s=60.0,
    out_dir=None,
)
