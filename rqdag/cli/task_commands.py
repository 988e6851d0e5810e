"""Commands about one task of a run: ``inspect`` and ``resolve``."""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import socket
import time
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from rqdag.cli.common import (
    handle_errors,
    json_option,
    one_line,
    open_client,
    redis_option,
)
from rqdag.cli.output import (
    PENDING,
    console,
    print_json,
    show,
    styled,
)
from rqdag.cli.stores import data_dir_option, reading_client
from rqdag.errors import RqdagError
from rqdag.shared.model.codec import loads
from rqdag.shared.model.definition import task_to_dict
from rqdag.shared.model.holds import child_run_id
from rqdag.shared.model.mapping import child_maker, parent_of
from rqdag.shared.model.task import TaskStatus
from rqdag.shared.model.vocabulary import AuditKind, TaskKind
from rqdag.shared.store.resolve import read_audit, resolve_task
from rqdag.shared.store.runs import RunStore


def operator() -> str:
    """``$USER@hostname``: who resolved a task, as the audit stream records it."""
    try:
        user = os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def inspect_task(store: RunStore, run_id: str, task: str) -> dict[str, Any]:
    """Everything known about one task of a run (the ``rqdag inspect --json`` document)."""
    meta = store.read_meta(run_id)
    definition = {t.name: t for t in store.read_definition(run_id).tasks}
    parent = definition.get(parent_of(task) or "")
    if task not in definition and parent is not None and parent.map_over is not None:
        definition[task] = child_maker(parent)(task, tuple(parent.depends_on))  # a mapped task's child
    if task not in definition:
        raise RqdagError(f"run '{run_id}' has no task '{task}'")
    state = store.read_state(run_id)
    result = state.results.get(task)
    entry = state.dispatch.get(task)
    in_flight = None
    if entry is not None:
        in_flight = {k: v for k, v in dataclasses.asdict(entry).items() if k != "last_result"}
        if entry.last_result is not None:
            in_flight["last_result"] = loads(entry.last_result, what=f"run '{run_id}': '{task}' last_result")
    spec = definition[task]
    status = result.status.value if result is not None else (entry.state if entry else PENDING)
    return {
        "run_id": run_id,
        "run_status": meta.status,
        "epoch": meta.epoch,
        "task": task,
        "status": status,
        "attempts": result.metrics.attempt if result is not None else (entry.attempt if entry else 0),
        "max_attempts": spec.retry.attempts + 1,
        "result": None if result is None else result.to_dict(),
        "in_flight": in_flight,
        "definition": task_to_dict(spec),
        "audit": read_audit(store, run_id, task),
        "child_run": child_run_id(run_id, task) if spec.kind is TaskKind.SUBFLOW else None,
    }


def _print_inspection(doc: dict[str, Any]) -> None:
    out = console()
    facts = Table.grid(padding=(0, 2))
    facts.add_row("run", f"{doc['run_id']} ({styled(doc['run_status'])}, epoch {doc['epoch']})")
    facts.add_row("task", f"[bold]{doc['task']}[/] {styled(doc['status'])}")
    facts.add_row("attempts", f"{doc['attempts']} of at most {doc['max_attempts']}")
    facts.add_row("function", Text(str(doc["definition"]["func"])))
    if doc.get("child_run"):
        facts.add_row("child run", Text(doc["child_run"]))
    result = doc["result"]
    if result is not None:
        metrics = result["metrics"]
        facts.add_row("worker", Text(str(metrics.get("worker") or "-")))
        if metrics.get("duration_s") is not None:
            facts.add_row("duration", f"{metrics['duration_s']:.3f}s")
        facts.add_row("message", Text(result.get("message") or "-"))
        if result.get("in_doubt"):
            facts.add_row("in doubt", "[magenta]yes: resolve it with 'rqdag resolve'[/]")
    if doc["in_flight"] is not None:
        entry = doc["in_flight"]
        facts.add_row(
            "in flight", Text(f"{entry['state']} (attempt {entry['attempt']}) on {entry['worker'] or '-'}")
        )
        if entry.get("waiting"):
            facts.add_row("waiting", Text(str(entry["waiting"])))
    show(out, facts)
    if result is not None and result.get("data") is not None:
        out.print("[bold]data[/]")
        out.print(Text(json.dumps(result["data"], indent=2, ensure_ascii=False, sort_keys=True)))
    if result is not None and result.get("error"):
        out.print("[bold]error[/]")
        out.print(Text(result["error"].rstrip()))
    for entry in doc["audit"]:
        out.print(Text(f"audit: {audit_sentence(entry)}"))


def _when(at: Any) -> str:
    if not isinstance(at, int | float):
        return "at an unknown time"
    return time.strftime("on %Y-%m-%d at %H:%M:%S UTC", time.gmtime(at))


def _previous_words(previous: Any) -> str:
    if not isinstance(previous, dict):
        return "no result"
    status = previous.get("status") or "unknown"
    message = one_line(previous.get("message") or "")
    doubt = ", in doubt" if previous.get("in_doubt") else ""
    return f"{status}{doubt}" + (f" ({message})" if message else "")


def audit_sentence(entry: dict[str, Any]) -> str:
    """One audit entry as a sentence: who did what to the task, when, why, over what."""
    task = entry.get("task") or "?"
    if entry.get("kind") == AuditKind.RESUME:
        return (
            f"a resume set aside the epoch-{entry.get('epoch', '?')} result of {task}: "
            f"{_previous_words(entry.get('result'))}"
        )
    reason = entry.get("reason")
    return (
        f"{entry.get('who') or 'someone'} resolved {task} as {entry.get('status') or '?'} "
        f"{_when(entry.get('at'))}"
        + (f" because {one_line(reason)}" if reason else " (no reason given)")
        + f"; it was {_previous_words(entry.get('previous'))}"
    )


@click.command("inspect")
@click.argument("run_id")
@click.argument("task")
@redis_option
@data_dir_option
@json_option
@handle_errors
def inspect_command(run_id: str, task: str, redis_url: str | None, data_dir: str, as_json: bool) -> None:
    """Show one task of a run: result, data, error with traceback, attempts, audit trail.

    A task in flight also shows its dispatch entry (state, attempt, worker,
    heartbeat). With no Redis given, reads the embedded store of 'rqdag run'.
    """
    with reading_client(redis_url, data_dir) as client:
        doc = inspect_task(RunStore(client.connection), run_id, task)
    if as_json:
        print_json(doc)
    else:
        _print_inspection(doc)


@click.command()
@click.argument("run_id")
@click.argument("task")
@redis_option
@click.option(
    "--status",
    "status_",
    type=click.Choice([TaskStatus.SUCCESS.value, TaskStatus.FAILURE.value]),
    required=True,
    help="What really happened.",
)
@click.option("--data", default=None, metavar="JSON", help="The task's data, as JSON (with success).")
@click.option("--reason", default=None, help="Why; kept in the run's audit trail.")
@json_option
@handle_errors
def resolve(
    run_id: str,
    task: str,
    redis_url: str | None,
    status_: str,
    data: str | None,
    reason: str | None,
    as_json: bool,
) -> None:
    """Record what really happened to TASK (say, an at-most-once task in doubt).

    The task's result becomes --status (with --data); the previous result, who
    ($USER@host), when and why go to the run's audit trail. A run blocked on the
    task goes on: its dependents run (success) or are skipped (failure).
    """
    try:
        value = None if data is None else loads(data, what="--data")
    except RqdagError as exc:
        raise click.BadParameter(str(exc), param_hint="--data") from None
    who = operator()
    store = RunStore(open_client(redis_url).connection)
    result = resolve_task(store, run_id, task, status=TaskStatus(status_), data=value, reason=reason, who=who)
    if as_json:
        print_json({"run_id": run_id, "task": task, "who": who, "result": result.to_dict()})
        return
    click.echo(f"run {run_id}: task {task} resolved as {status_} by {who}")
