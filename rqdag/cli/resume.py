"""``rqdag resume``: a new epoch of a finished run, with what it keeps, runs again, and why."""

from __future__ import annotations

import json
from typing import Any

import click

from rqdag.cli.common import handle_errors, json_option, open_client, parse_params, redis_option
from rqdag.cli.output import print_json
from rqdag.cli.targets import load_target
from rqdag.shared.model.resume_plan import ResumePlan
from rqdag.shared.store.resume import resume_run
from rqdag.shared.store.runs import RunStore

ABSENT = "(none)"


@click.command()
@click.argument("run_id")
@redis_option
@click.option(
    "--plan", is_flag=True, help="Only print what a resume would keep, run again, add and drop, and why."
)
@click.option("--keep-changed", is_flag=True, help="Keep successes of tasks whose definition changed.")
@click.option(
    "--target",
    default=None,
    metavar="TARGET",
    help="Resume with this (changed) workflow, not the stored one.",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change a run parameter from this epoch on (JSON, or else text); the others stay.",
)
@click.option(
    "--rerun",
    "rerun",
    multiple=True,
    metavar="TASK",
    help="Run this task again, success or not, and everything downstream of it (repeatable).",
)
@json_option
@handle_errors
def resume(
    run_id: str,
    redis_url: str | None,
    plan: bool,
    keep_changed: bool,
    target: str | None,
    params: tuple[str, ...],
    rerun: tuple[str, ...],
    as_json: bool,
) -> None:
    """Start a new epoch of a finished run: successes stay, everything else runs again.

    A success whose task changed since it ran runs again, with everything
    downstream of it, unless --keep-changed: its code (as the workers run it
    now, or as --target has it), its settings or its dependencies. The plan
    says which. A run that succeeded, with nothing changed and no --rerun, is
    left as it is: there is nothing to resume.
    """
    changes = parse_params(params)
    client = open_client(redis_url)
    workflow = load_target(target).workflow if target else None
    result = resume_run(
        RunStore(client.connection),
        run_id,
        workflow=workflow,
        keep_changed=keep_changed,
        dry_run=plan,
        params=changes,
        rerun=rerun,
    )
    resumed = not plan and not result.nothing_to_resume
    if as_json:
        print_json({"run_id": run_id, "resumed": resumed, **result.to_dict()})
        return
    for line in plan_lines(result):
        click.echo(line)
    if result.nothing_to_resume:
        click.echo(
            f"nothing to resume: run {run_id} succeeded and no task changed (--rerun TASK runs a task again)"
        )
    elif resumed:
        click.echo(f"run {run_id} resumed; a coordinator will drive it")


def plan_lines(plan: ResumePlan) -> list[str]:
    """The plan as lines of text: what stays and runs, then why, when there is a why."""
    lines = [
        f"keep: {_names(plan.keep)}",
        f"rerun: {_names(plan.rerun)}",
        "changed: " + _names([f"{n} ({', '.join(plan.why[n])})" for n in plan.changed]),
        f"add: {_names(plan.add)}",
        f"drop: {_names(plan.drop)}",
    ]
    if plan.requested:
        lines.append(f"requested: {_names(plan.requested)}")
    if plan.downstream:
        lines.append("downstream: " + _names([f"{n} (after {up})" for n, up in plan.downstream.items()]))
    old, new = plan.params
    changed = [f"{k}: {_value(old, k)} -> {_value(new, k)}" for k in plan.changed_params()]
    if changed:
        lines.append("params: " + ", ".join(changed))
    lines.extend(f"note: {note}" for note in plan.notes)
    return lines


def _names(names: list[str]) -> str:
    return ", ".join(names) if names else "-"


def _value(params: dict[str, Any], key: str) -> str:
    return json.dumps(params[key], ensure_ascii=False, sort_keys=True) if key in params else ABSENT
