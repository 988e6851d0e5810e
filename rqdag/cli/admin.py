"""Commands that read or change runs: status, runs, resume, cancel, snapshot, graph."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson

from rqdag.cli.common import (
    console,
    counts_line,
    handle_errors,
    json_option,
    meta_to_dict,
    print_json,
    redis_option,
    require_redis,
    results_table,
)
from rqdag.client import Client
from rqdag.errors import SnapshotError
from rqdag.shared.codec import snapshot_from_document, snapshot_to_document
from rqdag.shared.definition import decode_definition, encode_definition
from rqdag.shared.graph import to_dot, to_mermaid, topological_order
from rqdag.shared.resume import resume_run
from rqdag.shared.runs import RunStore
from rqdag.targets import load_target


@click.command()
@click.argument("run_id")
@redis_option
@json_option
@handle_errors
def status(run_id: str, redis_url: str | None, as_json: bool) -> None:
    """Show a run: each task's status, attempt, worker, duration and message."""
    client = Client(require_redis(redis_url))
    store = RunStore(client.connection)
    meta = store.read_meta(run_id)
    state = store.read_state(run_id)
    if as_json:
        running = {
            name: {"state": e.state, "attempt": e.attempt, "worker": e.worker}
            for name, e in state.dispatch.items()
        }
        print_json({"run": meta_to_dict(meta), **snapshot_to_document(state.results), "in_flight": running})
        return
    order = topological_order(store.read_definition(run_id).tasks)
    out = console()
    out.print(results_table(state.results, order))
    for problem in state.problems:
        out.print(f"[red]problem:[/] {problem}")
    out.print(
        f"run {run_id} (epoch {meta.epoch}): [bold]{meta.status}[/] - "
        f"{counts_line(state.results, meta.task_count)}"
    )


@click.command()
@redis_option
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--status", "status_filter", default=None, help="Only runs with this status.")
@click.option("--workflow", default=None, help="Only runs of this workflow.")
@json_option
@handle_errors
def runs(
    redis_url: str | None, limit: int, status_filter: str | None, workflow: str | None, as_json: bool
) -> None:
    """List runs, newest first."""
    client = Client(require_redis(redis_url))
    metas = [
        m
        for m in client.runs(limit)
        if (status_filter is None or m.status == status_filter)
        and (workflow is None or m.workflow == workflow)
    ]
    if as_json:
        print_json([meta_to_dict(m) for m in metas])
        return
    out = console()
    for m in metas:
        out.print(f"{m.run_id}  {m.workflow}  {m.status}  epoch {m.epoch}")


@click.command()
@click.argument("run_id")
@redis_option
@click.option("--plan", is_flag=True, help="Only print what a resume would keep, run again, add and drop.")
@click.option("--keep-changed", is_flag=True, help="Keep successes of tasks whose definition changed.")
@click.option("--target", default=None, help="Resume with this (changed) workflow instead of the stored one.")
@json_option
@handle_errors
def resume(
    run_id: str, redis_url: str | None, plan: bool, keep_changed: bool, target: str | None, as_json: bool
) -> None:
    """Start a new epoch of a finished run: successes stay, everything else runs again."""
    client = Client(require_redis(redis_url))
    workflow = load_target(target).workflow if target else None
    result = resume_run(
        RunStore(client.connection), run_id, workflow=workflow, keep_changed=keep_changed, dry_run=plan
    )
    if as_json:
        print_json(result.to_dict())
        return
    for label, names in result.to_dict().items():
        click.echo(f"{label}: {', '.join(names) if names else '-'}")
    if not plan:
        click.echo(f"run {run_id} resumed; a coordinator will drive it")


@click.command()
@click.argument("run_id")
@redis_option
@click.option("--reason", default="cancelled by request", show_default=True)
@handle_errors
def cancel(run_id: str, redis_url: str | None, reason: str) -> None:
    """Cancel a run: pending tasks become cancelled, running ones see ctx.cancelled."""
    Client(require_redis(redis_url)).run(run_id).cancel(reason)
    click.echo(f"cancel requested for run {run_id}")


@click.group()
def snapshot() -> None:
    """Export and import run snapshots (move a run between environments)."""


@snapshot.command("export")
@click.argument("run_id")
@redis_option
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="File [default: stdout].")
@handle_errors
def snapshot_export(run_id: str, redis_url: str | None, output: str | None) -> None:
    """Write a run's snapshot (with its definition and params) as JSON."""
    store = RunStore(Client(require_redis(redis_url)).connection)
    meta = store.read_meta(run_id)
    document = snapshot_to_document(store.read_results(run_id))
    document["run"] = {
        "run_id": run_id,
        "params": meta.params,
        "definition": orjson.loads(encode_definition(store.read_definition(run_id))),
    }
    body = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    if output:
        Path(output).write_bytes(body)
    else:
        sys.stdout.buffer.write(body + b"\n")


@snapshot.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--run-id", required=True, help="Id of the new run.")
@redis_option
@handle_errors
def snapshot_import(file: str, run_id: str, redis_url: str | None) -> None:
    """Create run RUN_ID from an exported snapshot; its successes will not run again."""
    raw = Path(file).read_bytes()
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SnapshotError(f"{file}: not valid JSON: {exc}") from None
    results = snapshot_from_document(document, source=file)
    run = document.get("run") if isinstance(document, dict) else None
    if not isinstance(run, dict) or "definition" not in run:
        raise SnapshotError(f"{file}: no 'run.definition' (export it with 'rqdag snapshot export')")
    workflow = decode_definition(orjson.dumps(run["definition"]), run_id=run_id)
    client = Client(require_redis(redis_url))
    client.submit(workflow, params=run.get("params") or {}, run_id=run_id, snapshot=results)
    click.echo(run_id)


@click.command()
@click.argument("target_or_run")
@redis_option
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
@handle_errors
def graph(target_or_run: str, redis_url: str | None, fmt: str) -> None:
    """Draw a workflow (TARGET) or a run (RUN_ID, coloured by status)."""
    draw = to_mermaid if fmt == "mermaid" else to_dot
    if ":" in target_or_run and not redis_url:
        click.echo(draw(load_target(target_or_run).workflow), nl=False)
        return
    store = RunStore(Client(require_redis(redis_url)).connection)
    if ":" in target_or_run and not store.exists(target_or_run):
        click.echo(draw(load_target(target_or_run).workflow), nl=False)
        return
    click.echo(draw(store.read_definition(target_or_run).tasks, store.read_results(target_or_run)), nl=False)
