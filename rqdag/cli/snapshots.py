"""``rqdag snapshot export|import|diff``: move runs between environments and compare them."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from rqdag.cli.common import (
    CommandFailed,
    handle_errors,
    json_option,
    open_client,
    redis_option,
)
from rqdag.cli.output import (
    Cell,
    console,
    make_table,
    print_json,
    show,
    styled,
)
from rqdag.cli.stores import data_dir_option, reading_client
from rqdag.client import given_run_id
from rqdag.errors import SnapshotError
from rqdag.shared.model.codec import loads, snapshot_from_document, snapshot_from_json, snapshot_to_document
from rqdag.shared.model.definition import decode_definition, encode_definition
from rqdag.shared.model.limits import MAX_RESULT_BYTES
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.snapshot import write_atomically
from rqdag.shared.store.runs import RunStore

DATA_SHOWN = 40  # characters of data in the human diff
NAMES_SHOWN = 20  # task names in a warning line


@click.group()
def snapshot() -> None:
    """Export, import and compare run snapshots (task name -> final result)."""


@snapshot.command("export")
@click.argument("run_id")
@redis_option
@data_dir_option
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="File [default: stdout].")
@json_option
@handle_errors
def snapshot_export(
    run_id: str, redis_url: str | None, data_dir: str, output: str | None, as_json: bool
) -> None:
    """Write a run's snapshot, with its definition and params, as JSON.

    The export is JSON either way; with --json and -o, stdout gets a JSON line
    naming the file and the number of results written. With no Redis given,
    reads the embedded store of 'rqdag run'.
    """
    with reading_client(redis_url, data_dir) as client:
        body, count = export_with_count(RunStore(client.connection), run_id)
    if not output:
        sys.stdout.write(body)
        return
    write_atomically(output, body.encode("utf-8"))
    if as_json:
        print_json({"run_id": run_id, "output": output, "results": count})


def export_text(store: RunStore, run_id: str) -> str:
    """The export file of a run: its snapshot, definition and params (what import reads)."""
    return export_with_count(store, run_id)[0]


def export_with_count(store: RunStore, run_id: str) -> tuple[str, int]:
    """:func:`export_text` and the number of results in it."""
    meta = store.read_meta(run_id)
    results = store.read_results(run_id)
    document = snapshot_to_document(results)
    document["run"] = {
        "run_id": run_id,
        "workflow": meta.workflow,
        "params": meta.params,
        "definition": loads(encode_definition(store.read_definition(run_id)), what=f"run '{run_id}'"),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n", len(results)


@snapshot.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--run-id", required=True, help="Id of the new run.")
@click.option(
    "--max-result-bytes",
    type=click.IntRange(min=1),
    default=MAX_RESULT_BYTES,
    show_default=True,
    help="A success larger than this (its JSON) is refused, as workers refuse to store it.",
)
@redis_option
@json_option
@handle_errors
def snapshot_import(
    file: str, run_id: str, max_result_bytes: int, redis_url: str | None, as_json: bool
) -> None:
    """Create run RUN_ID from an exported snapshot; its successes will not run again.

    A coordinator then runs everything else, on workers that have the tasks.
    Results of tasks that are not in the file's workflow are left out, with a
    warning naming them.
    """
    given_run_id(run_id)
    document = loads(Path(file).read_bytes(), what=file)
    results = snapshot_from_document(document, source=file)
    run = document.get("run") if isinstance(document, dict) else None
    if not isinstance(run, dict) or "definition" not in run:
        raise SnapshotError(f"{file}: no 'run.definition' (export it with 'rqdag snapshot export')")
    params = run.get("params")
    if params is not None and not isinstance(params, dict):
        raise SnapshotError(f"{file}: 'run.params' must be a JSON object, got {type(params).__name__}")
    workflow = decode_definition(json.dumps(run["definition"]).encode(), run_id=run_id)
    client = open_client(redis_url)
    client.submit(workflow, params=params, run_id=run_id, snapshot=results, max_result_bytes=max_result_bytes)
    unknown = sorted(set(results) - {t.name for t in workflow.tasks})
    if as_json:
        print_json({"run_id": run_id, "results": len(results) - len(unknown), "left_out": unknown})
        return
    if unknown:
        click.echo(
            f"warning: {file}: results of tasks not in workflow '{workflow.name}' were left out: "
            + names_line(unknown),
            err=True,
        )
    click.echo(run_id)


def names_line(names: Sequence[str], shown: int = NAMES_SHOWN) -> str:
    """``a, b, c``; past ``shown`` names, ``a, b, c and 8 more``."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def _side(spec: str, redis_url: str | None, data_dir: str) -> dict[str, TaskResult]:
    """The results of a snapshot file or, when no such file exists, of a run."""
    path = Path(spec)
    if path.is_file():
        return snapshot_from_json(path.read_bytes(), source=spec)
    try:
        with reading_client(redis_url, data_dir) as client:
            return RunStore(client.connection).read_results(spec)
    except CommandFailed as exc:
        raise CommandFailed(f"no snapshot file {spec!r}, and no run to read: {exc.message}") from None


def diff_snapshots(a: Mapping[str, TaskResult], b: Mapping[str, TaskResult]) -> dict[str, Any]:
    """Tasks added in B, removed from A, whose status changed, whose data changed (same status)."""
    status_changed = []
    data_changed = []
    for name in sorted(set(a) & set(b)):
        if a[name].status is not b[name].status:
            status_changed.append({"task": name, "a": a[name].status.value, "b": b[name].status.value})
        elif a[name].data != b[name].data:
            data_changed.append({"task": name, "a": a[name].data, "b": b[name].data})
    return {
        "added": [{"task": n, "status": b[n].status.value} for n in sorted(set(b) - set(a))],
        "removed": [{"task": n, "status": a[n].status.value} for n in sorted(set(a) - set(b))],
        "status_changed": status_changed,
        "data_changed": data_changed,
        "unchanged": len(set(a) & set(b)) - len(status_changed) - len(data_changed),
    }


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= DATA_SHOWN else text[: DATA_SHOWN - 3] + "..."


def _diff_table(diff: Mapping[str, Any]) -> Table:
    rows: list[list[Cell]] = []
    for i in diff["added"]:
        rows.append([Text(i["task"]), "[green]added[/]", "", styled(i["status"])])
    for i in diff["removed"]:
        rows.append([Text(i["task"]), "[red]removed[/]", styled(i["status"]), ""])
    for i in diff["status_changed"]:
        rows.append([Text(i["task"]), "[yellow]status[/]", styled(i["a"]), styled(i["b"])])
    for i in diff["data_changed"]:
        rows.append([Text(i["task"]), "[yellow]data[/]", Text(_short(i["a"])), Text(_short(i["b"]))])
    return make_table(("task", "change", "A", "B"), rows)


@snapshot.command("diff")
@click.argument("a")
@click.argument("b")
@redis_option
@data_dir_option
@json_option
@handle_errors
def snapshot_diff(a: str, b: str, redis_url: str | None, data_dir: str, as_json: bool) -> None:
    """Compare two snapshots: A and B are each a snapshot file or a run id.

    Lists the tasks added in B, removed from A, whose status changed, and whose
    data changed (same status). Exit code 0 whether or not they differ.
    """
    diff = {"a": a, "b": b, **diff_snapshots(_side(a, redis_url, data_dir), _side(b, redis_url, data_dir))}
    if as_json:
        print_json(diff)
        return
    out = console()
    changes = sum(len(diff[k]) for k in ("added", "removed", "status_changed", "data_changed"))
    if changes:
        show(out, _diff_table(diff))
    out.print(f"A: {a}  B: {b} - {changes} changed, {diff['unchanged']} unchanged", markup=False)
