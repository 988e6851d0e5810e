"""The results as Markdown (RESULTS.md, and the table printed at the end) and as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from bench.config import Config
from bench.machine import Machine, load_average
from bench.stats import Row, SectionResult

HEADER = "| # | Measure | rqdag | Reference | rqdag / reference | Target | Met |"
RULE = "|---|---|---|---|---|---|---|"


def _met(value: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "-"}[value]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(sections: Sequence[SectionResult]) -> str:
    """The results table (one line per row; a skipped section is one line with its reason)."""
    lines = [HEADER, RULE]
    for section in sections:
        number = section.title.split(".", 1)[0]
        if section.skipped is not None:
            lines.append(
                f"| {number} | {_cell(section.title)} | skipped: {_cell(section.skipped)} | | | | - |"
            )
            continue
        for row in section.rows:
            lines.append(_row_line(number, row))
    return "\n".join(lines)


def _row_line(number: str, row: Row) -> str:
    ours = row.rqdag.format() if row.rqdag else "-"
    theirs = f"{row.reference.format()} ({row.reference_name})" if row.reference else row.reference_name
    ratio = row.ratio.format() if row.ratio else "-"
    measure = f"{row.measure} [{row.unit}]" if row.unit else row.measure
    cells = [number, measure, ours, theirs, ratio, row.target or "-", _met(row.met)]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def notes(sections: Sequence[SectionResult]) -> str:
    """Per-row notes and section notes, as a Markdown list."""
    lines = []
    for section in sections:
        for note in section.notes:
            lines.append(f"- {section.title}: {note}")
        for row in section.rows:
            if row.note:
                lines.append(f"- {row.section}, {row.measure}: {row.note}")
    return "\n".join(lines)


def machine_table(machine: Machine, redis_live: str, appendonly: bool, load_after: str) -> str:
    """The machine and software the run used."""
    persistence = "appendonly yes (everysec)" if appendonly else "appendonly no"
    rows = [
        ("CPU", f"{machine.cpu}, {machine.cores} cores"),
        ("System", machine.system),
        ("Python", machine.python),
        (
            "redis-server",
            f"{redis_live}: a fresh server started by the suite on 127.0.0.1, "
            f"{persistence}, no RDB snapshots",
        ),
        (
            "rq / redis-py / hiredis / orjson",
            f"{machine.rq} / {machine.redis_py} / {machine.hiredis} / {machine.orjson}",
        ),
        ("rqdag", f"{machine.rqdag}, commit {machine.commit}"),
        ("Started", machine.started),
        ("Load average (1/5/15 min) before / after", f"{machine.load_before}  /  {load_after}"),
    ]
    lines = ["| | |", "|---|---|"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in rows]
    return "\n".join(lines)


METHOD = """\
- Every figure is the median of {reps} repetitions, with [min .. max]. rqdag and its
  reference alternate (A B, B A, ...); a ratio is computed per pair of repetitions.
- Same Redis for both sides, emptied before every repetition (worker registrations kept).
- Same workers for both sides: {workers} processes of RQ's `SimpleWorker` class each
  (rqdag: `python -m rqdag worker --worker-class simple`; raw RQ: `rq.worker.SimpleWorker`),
  RQ's JSON serializer, no scheduler, WARNING logs, no RQ job timeout, the same result TTLs.
  Both pools are started once per worker count and stay registered; the idle pool is
  blocked on its own queue.
- rqdag's coordinator runs in-process (`RunDriver.drive()` in a thread of the bench
  process), so its CPU competes with the workers and Redis as a real one on the same
  host would; a run is timed from before `Client.submit` to `drive()` returning.
  Raw RQ is timed from before `Queue.enqueue_many` until RQ's finished-job registry
  holds every job (polled every 5 ms).
- Section 4 runs with no workers: coordinators start in fresh processes.
- Section 5 runs with workers whose Redis round trips are counted (both sides alike).
- Section 6 runs last, alone: a peer's figure is in the Reference column, and rqdag's
  for the same shape is in section 1 or 2.
- Section 7 runs on the base rqdag pool; its figures are one value per finished run
  (the rqdag / RQ keys) or per repetition (used_memory), not timings.
- Section 8 runs on the base rqdag pool with a coordinator service in its own process
  (`rqdag coordinator --max-runs N`), not the in-process one.
"""


def markdown(
    config: Config,
    machine: Machine,
    redis_live: str,
    sections: Sequence[SectionResult],
    duration_s: float,
) -> str:
    """The whole RESULTS.md."""
    sizes = (
        f"wide {config.width:,}, chain {config.chain:,}, fan-in {config.fanin:,}, resume "
        f"{config.resume_small:,} and {config.resume:,}{' and 1,000,000' if config.resume_million else ''}, "
        f"overhead wide {config.overhead_width:,} and chain {config.overhead_chain:,}, "
        f"memory {config.memory_runs:,} runs, many runs {' and '.join(f'{n:,}' for n in config.many_runs)}, "
        f"submit {config.submit_runs:,} runs, "
        f"log capture wide {config.logs_width:,}"
    )
    parts = [
        "# rqdag benchmark results",
        "",
        "Written by the benchmark suite (`python -m bench`, see `bench/README.md`); "
        "the latest run replaces it.",
        "",
        f"- Mode: {config.mode} ({sizes}); {duration_s / 60:.1f} minutes.",
        "",
        "## Machine",
        "",
        machine_table(machine, redis_live, config.appendonly, load_average()),
        "",
        "## Method",
        "",
        METHOD.format(reps=config.reps, workers=config.workers).rstrip(),
        "",
        "## Results",
        "",
        table(sections),
        "",
    ]
    extra = notes(sections)
    if extra:
        parts += ["## Notes", "", extra, ""]
    return "\n".join(parts)


def to_json(config: Config, machine: Machine, sections: Sequence[SectionResult], duration_s: float) -> str:
    """Machine-readable results."""
    document: dict[str, Any] = {
        "mode": config.mode,
        "duration_s": duration_s,
        "machine": asdict(machine),
        "sections": [s.to_dict() for s in sections],
    }
    return json.dumps(document, indent=2)
