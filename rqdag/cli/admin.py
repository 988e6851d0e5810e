"""Commands that read or change runs: status, runs, cancel, graph (resume is in :mod:`.resume`)."""

from __future__ import annotations

import time
from typing import Any

import click
from rich.text import Text

from rqdag.cli.common import (
    RUN_STATUSES,
    handle_errors,
    json_option,
    meta_to_dict,
    open_client,
    redis_option,
)
from rqdag.cli.holds_view import family_lines, hold_note, reached_holds
from rqdag.cli.live import format_duration, undriven_lines
from rqdag.cli.output import (
    children_lines,
    console,
    counts_line,
    make_table,
    mapped_labels,
    print_json,
    results_table,
    show,
    status_counts,
    styled,
    with_children,
)
from rqdag.cli.stores import data_dir_option, reading_client, undriven_note
from rqdag.cli.targets import load_target
from rqdag.shared.model.codec import snapshot_to_document
from rqdag.shared.model.graph import to_dot, to_mermaid, topological_order
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import Task
from rqdag.shared.store.driving import Driver, read_driver
from rqdag.shared.store.keys import RUNS, RunKeys
from rqdag.shared.store.records import RunMeta, RunState
from rqdag.shared.store.runs import RunStore

NO_RUNS = "no runs yet: 'rqdag run' or 'rqdag submit' starts one"


@click.command()
@click.argument("run_id")
@click.option(
    "--expand", is_flag=True, help="List each child of a mapped task, not one line per mapped task."
)
@redis_option
@data_dir_option
@json_option
@handle_errors
def status(run_id: str, redis_url: str | None, data_dir: str, as_json: bool, expand: bool) -> None:
    """Show a run: each task's status, attempt, worker, duration and message.

    With no Redis given, reads the embedded store of 'rqdag run' (--data-dir).
    An unfinished run that no coordinator drives says so.
    """
    with reading_client(redis_url, data_dir) as client:
        store = RunStore(client.connection)
        meta = store.read_meta(run_id)
        state = store.read_state(run_id)
        driver = read_driver(client.connection, run_id)
        tasks = store.read_definition(run_id).tasks
        holds = reached_holds(store, meta, state, tasks)
        family = family_lines(store, run_id, tasks)
        order = None if as_json else topological_order(tasks)
        children = store.expansion_counts(run_id)
    counts = status_counts(state.results, state.dispatch, meta.task_count)
    if as_json:
        print_json({**_status_document(meta, state, counts, driver), "holds": holds})
        return
    out = console()
    notes = {name: hold_note(hold) for name, hold in holds.items()}
    assert order is not None
    shown = with_children(order, state.results, state.dispatch) if expand else order
    show(out, results_table(state.results, shown, state.dispatch, notes))
    if not expand:
        for line in children_lines(order, state.results, state.dispatch, children):
            out.print(Text(line))
    for problem in state.problems:
        out.print(f"[red]problem:[/] {problem}")
    out.print(
        f"run {run_id} (epoch {meta.epoch}): [bold]{styled(meta.status)}[/] - "
        f"{counts_line(counts, meta.task_count)}"
    )
    if meta.error:
        out.print(Text.assemble(("error: ", "red"), meta.error))
    for line in family:
        out.print(Text(line))
    note = undriven_note(run_id, embedded=not redis_url)
    for line in undriven_lines(meta.finished, driver, note):
        out.print(Text(line, style="yellow"))


def _status_document(meta: RunMeta, state: RunState, counts: dict[str, int], driver: Driver) -> Any:
    """The ``rqdag status --json`` document."""
    in_flight = state.in_flight()
    return {
        "run": meta_to_dict(meta),
        **snapshot_to_document(state.results),
        "in_flight": in_flight,
        "counts": counts,
        "problems": state.problems,
        "coordinator": driver.to_dict(),
    }


def _matching_runs(store: RunStore, limit: int, status: str | None, workflow: str | None) -> list[RunMeta]:
    """The newest ``limit`` runs that pass the filters (reads further back when filtering)."""
    total = int(store.client.zcard(RUNS))
    window = limit
    while True:
        metas = [
            m
            for m in store.list_runs(window)
            if (status is None or m.status == status) and (workflow is None or m.workflow == workflow)
        ]
        if len(metas) >= limit or window >= total:
            return metas[:limit]
        window *= 4


@click.command()
@redis_option
@data_dir_option
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Most runs listed.")
@click.option(
    "--status",
    "status_filter",
    type=click.Choice(RUN_STATUSES),
    default=None,
    help="Only runs with this status.",
)
@click.option("--workflow", default=None, help="Only runs of this workflow.")
@json_option
@handle_errors
def runs(
    redis_url: str | None,
    data_dir: str,
    limit: int,
    status_filter: str | None,
    workflow: str | None,
    as_json: bool,
) -> None:
    """List runs, newest first: status, progress (tasks done / tasks) and age.

    A run whose stored meta cannot be read is listed as 'error'; the reason, and
    that of every other 'error' run, follows the table.
    """
    with reading_client(redis_url, data_dir) as client:
        store = RunStore(client.connection)
        metas = _matching_runs(store, limit, status_filter, workflow)
        with store.client.pipeline(transaction=False) as pipe:
            for meta in metas:
                pipe.hlen(RunKeys(meta.run_id).results)
            done: list[int] = pipe.execute()
    now = time.time()
    rows: list[dict[str, Any]] = [
        {**meta_to_dict(m), "done": d, "age_s": round(max(now - m.created_at, 0.0), 3)}
        for m, d in zip(metas, done, strict=True)
    ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        filtered = status_filter is not None or workflow is not None
        click.echo("no runs match the filters" if filtered else NO_RUNS)
        return
    table = make_table(
        ("run", "workflow", "status", "progress", "epoch", "age"),
        [
            [
                Text(row["run_id"]),
                Text(row["workflow"]),
                styled(row["status"]),
                f"{row['done']}/{row['task_count']}",
                str(row["epoch"]),
                format_duration(row["age_s"]),
            ]
            for row in rows
        ],
    )
    out = console()
    show(out, table)
    for row in rows:
        if row["error"]:
            out.print(Text.assemble(("error: ", "red"), row["error"]))  # the reason names the run


@click.command()
@click.argument("run_id")
@redis_option
@click.option("--reason", default="cancelled by request", show_default=True, help="Why (kept with the run).")
@json_option
@handle_errors
def cancel(run_id: str, redis_url: str | None, reason: str, as_json: bool) -> None:
    """Cancel a run: pending tasks become cancelled, running ones see ctx.cancelled."""
    client = open_client(redis_url)
    try:
        client.run(run_id).cancel(reason)
    finally:
        client.connection.close()
    if as_json:
        print_json({"run_id": run_id, "cancel_requested": True, "reason": reason})
    else:
        click.echo(f"cancel requested for run {run_id}")


@click.command()
@click.argument("target_or_run")
@redis_option
@data_dir_option
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
@json_option
@handle_errors
def graph(target_or_run: str, redis_url: str | None, data_dir: str, fmt: str, as_json: bool) -> None:
    """Draw a workflow (TARGET) or a run (RUN_ID, coloured by status) as Mermaid or dot text.

    A RUN_ID with no Redis given is read from the embedded store of 'rqdag run'.
    With --json: the tasks, their dependencies and (for a run) their statuses.
    """
    tasks, results, children = _graph_of(target_or_run, redis_url, data_dir)
    if as_json:
        print_json(
            {
                "tasks": [
                    {
                        "name": t.name,
                        "depends_on": list(t.depends_on),
                        "status": results[t.name].status.value if results and t.name in results else None,
                    }
                    for t in tasks
                ]
            }
        )
        return
    draw = to_mermaid if fmt == "mermaid" else to_dot
    labels = mapped_labels(tasks, results or {}, {}, children)
    click.echo(draw(tasks, results, labels), nl=False)


def _graph_of(
    target_or_run: str, redis_url: str | None, data_dir: str
) -> tuple[list[Task], dict[str, TaskResult] | None, dict[str, int]]:
    """The tasks of TARGET (results None), or of a stored run with its results and
    its mapped tasks' child counts."""
    if ":" in target_or_run and not redis_url:
        return list(load_target(target_or_run).workflow.tasks), None, {}
    with reading_client(redis_url, data_dir) as client:
        store = RunStore(client.connection)
        if ":" in target_or_run and not store.exists(target_or_run):
            return list(load_target(target_or_run).workflow.tasks), None, {}
        results = store.read_results(target_or_run)  # "no run" before anything else
        tasks = list(store.read_definition(target_or_run).tasks)
        return tasks, results, store.expansion_counts(target_or_run)
