"""Human and JSON output: consoles that degrade to plain text, tables, status colours and counts.

JSON is written with the standard library (indentation, sorted keys); JSON
*input* is read through :mod:`rqdag.shared.model.codec` elsewhere.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from rqdag.shared.model.mapping import parent_of
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import Task
from rqdag.shared.model.vocabulary import AttemptState, RunStatus, TaskStatus
from rqdag.shared.store.records import DispatchEntry

TERMINAL = tuple(s.value for s in TaskStatus)  # success, failure, skipped, cancelled
IN_FLIGHT = tuple(  # always counted; a vanished attempt is counted only when there is one
    s.value
    for s in (
        AttemptState.QUEUED,
        AttemptState.RUNNING,
        AttemptState.RETRY_WAIT,
        AttemptState.HANDED_BACK,
        AttemptState.LOST,
    )
)
PENDING = "pending"  # a task with neither a result nor an attempt in flight
MAX_COLUMN = 40
MIN_LAST_COLUMN = 12
PLAIN_WIDTH = 200  # a pipe or a file has no width: keep messages whole

# one colour per word: a run's "cancelled" and "running" read as a result's and an attempt's
STATUS_STYLE: dict[str, str] = {
    TaskStatus.SUCCESS: "green",
    TaskStatus.FAILURE: "red",
    TaskStatus.SKIPPED: "dim",
    TaskStatus.CANCELLED: "yellow",
    AttemptState.QUEUED: "blue",
    AttemptState.RUNNING: "cyan",
    AttemptState.RETRY_WAIT: "magenta",
    AttemptState.HANDED_BACK: "blue",
    AttemptState.LOST: "red",
    PENDING: "blue",  # a task's, and RunStatus.PENDING
    RunStatus.BLOCKED: "magenta",
    RunStatus.SUCCEEDED: "green",
    RunStatus.FAILED: "red",
    RunStatus.ERROR: "red",
}


def print_json(value: Any) -> None:
    """One indented JSON document on stdout (keys sorted)."""
    click.echo(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


def print_json_line(value: Any) -> None:
    """One JSON document on one line of stdout, flushed (for streams of updates)."""
    click.echo(json.dumps(value, sort_keys=True, ensure_ascii=False))
    sys.stdout.flush()


def console() -> Console:
    """A console on stdout; plain text, and lines up to ``PLAIN_WIDTH``, when not a terminal."""
    out = Console(highlight=False, soft_wrap=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = PLAIN_WIDTH
    return out


def show(out: Console, renderable: Any) -> None:
    """Print ``renderable``; off a terminal, without the padding at the ends of lines."""
    if out.is_terminal:
        out.print(renderable)
        return
    with out.capture() as captured:
        out.print(renderable)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


Cell = str | Text


def make_table(columns: Sequence[str], rows: Sequence[Sequence[Cell]], out: Console | None = None) -> Table:
    """A table: ruled on a terminal, bare aligned text otherwise; one line per row.

    Every column but the last keeps the width of its widest cell (up to
    ``MAX_COLUMN``); the last one (a message, say) gets what is left of the
    console's width and is cut with an ellipsis. Strings are rich markup.
    """
    out = out or console()
    terminal = out.is_terminal
    table = Table(
        show_edge=False,
        header_style="bold",
        box=box.HEAVY_HEAD if terminal else None,
        padding=(0, 1) if terminal else (0, 2, 0, 0),
    )
    texts = [[cell if isinstance(cell, Text) else Text.from_markup(cell) for cell in row] for row in rows]
    widths = [
        min(max([len(column), *(row[i].cell_len for row in texts)]), MAX_COLUMN)
        for i, column in enumerate(columns[:-1])
    ]
    overhead = 3 * len(columns) - 1 if terminal else 2 * len(columns)
    last = max(out.width - sum(widths) - overhead, MIN_LAST_COLUMN)
    for column, width in zip(columns, widths, strict=False):
        table.add_column(column, no_wrap=True, width=width, overflow="ellipsis")
    table.add_column(columns[-1], no_wrap=True, overflow="ellipsis")
    for row in texts:
        row[-1].truncate(last, overflow="ellipsis")
        table.add_row(*row)
    return table


def styled(status: str) -> str:
    """``status`` in its colour (rich markup)."""
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


def results_table(
    results: Mapping[str, TaskResult],
    order: list[str] | None = None,
    dispatch: Mapping[str, DispatchEntry] | None = None,
    notes: Mapping[str, str] | None = None,
) -> Table:
    """Task, status, attempt, worker, duration, message: results, then attempts in flight;
    ``notes``: the message of a pending task (a wait or sleep reached)."""
    in_flight = dispatch or {}
    rows: list[list[Cell]] = []
    for name in order or sorted({*results, *in_flight}):
        result = results.get(name)
        entry = in_flight.get(name)
        if result is not None:
            duration = result.metrics.duration_s
            rows.append(
                [
                    Text(name),
                    styled(result.status.value),
                    str(result.metrics.attempt or ""),
                    Text(result.metrics.worker or ""),
                    "" if duration is None else f"{duration:.2f}s",
                    Text((result.message or "").splitlines()[0] if result.message else ""),
                ]
            )
        elif entry is not None:
            note = f"waiting: {entry.waiting}" if entry.waiting else ""
            worker = Text(entry.worker or "")
            rows.append([Text(name), styled(entry.state), str(entry.attempt), worker, "", Text(note)])
        else:
            note = (notes or {}).get(name, "")
            rows.append([Text(name), styled(PENDING), "", "", "", Text(note)])
    return make_table(("task", "status", "attempt", "worker", "duration", "message"), rows)


def children_by_parent(
    results: Mapping[str, TaskResult], dispatch: Mapping[str, DispatchEntry]
) -> dict[str, list[str]]:
    """Mapped task -> the names of its children that have a result or an attempt in flight."""
    by_parent: dict[str, list[str]] = {}
    for name in {*results, *dispatch}:
        parent = parent_of(name)
        if parent is not None:
            by_parent.setdefault(parent, []).append(name)
    return by_parent


def children_lines(
    order: Sequence[str],
    results: Mapping[str, TaskResult],
    dispatch: Mapping[str, DispatchEntry],
    children: Mapping[str, int],
) -> list[str]:
    """``load_partition  97/100 success, 3 running``: one line per mapped task that has children."""
    by_parent = children_by_parent(results, dispatch)
    named = [n for n in order if n in by_parent or n in children]
    width = max((len(n) for n in named), default=0)
    lines = []
    for name in named:
        line = children_line(by_parent.get(name, []), results, dispatch, children.get(name))
        lines.append(f"{name.ljust(width)}  {line}")
    return lines


def with_children(
    order: list[str], results: Mapping[str, TaskResult], dispatch: Mapping[str, DispatchEntry]
) -> list[str]:
    """``order`` with each mapped task's children after it, in name order (``status --expand``)."""
    by_parent = children_by_parent(results, dispatch)
    out: list[str] = []
    for name in order:
        out.append(name)
        out.extend(sorted(by_parent.get(name, ())))
    return out


def children_line(
    names: list[str],
    results: Mapping[str, TaskResult],
    dispatch: Mapping[str, DispatchEntry],
    total: int | None,
) -> str:
    """``97/100 success, 3 running``: a mapped task's children by status."""
    counts = dict.fromkeys((*TERMINAL, *IN_FLIGHT, PENDING), 0)
    for name in names:
        result = results.get(name)
        status = result.status.value if result is not None else dispatch[name].state.value
        counts[status] = counts.get(status, 0) + 1
    total = max(total or 0, len(names))
    success = counts.pop(TaskStatus.SUCCESS.value)
    counts[PENDING] = total - len(names)
    rest = "".join(f", {n} {status}" for status, n in counts.items() if n)
    return f"{success}/{total} success{rest}"


def mapped_labels(
    tasks: Sequence[Task],
    results: Mapping[str, TaskResult],
    dispatch: Mapping[str, DispatchEntry],
    children: Mapping[str, int],
) -> dict[str, str]:
    """A mapped task's node text in a drawing: its name and its children's counts."""
    by_parent = children_by_parent(results, dispatch)
    labels: dict[str, str] = {}
    for t in tasks:
        if t.map_over is not None and (t.name in by_parent or t.name in children):
            line = children_line(by_parent.get(t.name, []), results, dispatch, children.get(t.name))
            labels[t.name] = f"{t.name} ({line})"
    return labels


def status_counts(
    results: Mapping[str, TaskResult], dispatch: Mapping[str, DispatchEntry], total: int
) -> dict[str, int]:
    """Tasks by status: the four terminal ones, the in-flight states, and ``pending``."""
    counts = dict.fromkeys((*TERMINAL, *IN_FLIGHT), 0)
    for result in results.values():
        counts[result.status.value] += 1
    for name, entry in dispatch.items():
        if name not in results:
            counts[entry.state.value] = counts.get(entry.state, 0) + 1
    counts[PENDING] = max(total - sum(counts.values()), 0)
    return counts


def counts_line(counts: Mapping[str, int], total: int) -> str:
    """``3 success, 1 failure, 2 pending (6 tasks)``: the non-zero counts."""
    parts = [f"{n} {status}" for status, n in counts.items() if n]
    return ", ".join(parts) + f" ({total} tasks)"
