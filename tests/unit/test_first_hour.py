"""What a new user reads in the first hour: tracebacks, cancels, audit sentences, a run's final data."""

from __future__ import annotations

import re
import threading

import click

from rqdag.cli import main
from rqdag.cli.drive import DATA_SHOWN, final_data_lines
from rqdag.cli.task_commands import audit_sentence
from rqdag.coordinator.state import TaskStateManager
from rqdag.shared.model.context import TaskContext
from rqdag.shared.model.invoke import invoke_task
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.task import Task
from rqdag.shared.model.vocabulary import AuditKind, TaskStatus
from rqdag.shared.store import keys
from rqdag.shared.store.keys import RunKeys
from tests.support import REPO


def noop(ctx: object) -> None:
    """A task function that is never called here."""


def parse_the_invoice(ctx: TaskContext) -> None:
    """Fails two frames deep in the user's code."""
    _read_amount({"amount": "12,50"})


def _read_amount(invoice: dict[str, str]) -> float:
    return float(invoice["amount"])


def context() -> TaskContext:
    return TaskContext("r1", "parse", 1, {}, {}, None, "rqdag:r1:parse", threading.Event())


def test_a_tasks_traceback_starts_at_the_users_code() -> None:
    result = invoke_task(parse_the_invoice, context())
    assert result.status is TaskStatus.FAILURE
    assert result.error is not None
    frames = [line.strip() for line in result.error.splitlines() if line.strip().startswith("File ")]
    assert "in parse_the_invoice" in frames[0], result.error
    assert "in _read_amount" in frames[1], result.error
    assert "invoke.py" not in result.error and "rqdag/" not in result.error.replace("tests/", "")
    assert result.error.rstrip().endswith("ValueError: could not convert string to float: '12,50'")


def test_a_cancelled_task_that_never_started_says_so_and_counts_no_attempt() -> None:
    sm = TaskStateManager(
        [Task("queued", noop), Task("running", noop), Task("waiting", noop, depends_on=["running"])]
    )
    batch = {d.task.name: d for d in sm.take_ready(0.0, 10)}
    running = sm.cancel_all("stop", unstarted={"queued"})
    assert sorted(running) == sorted((name, d.token) for name, d in batch.items())
    results = sm.snapshot()
    assert results["queued"] == TaskResult.cancelled("cancelled before it started: stop")
    assert results["waiting"] == TaskResult.cancelled("cancelled before it started: stop")
    assert results["queued"].metrics.attempt == 0 and results["waiting"].metrics.attempt == 0
    assert (results["running"].message, results["running"].metrics.attempt) == ("stop while running", 1)


def test_a_resolve_audit_entry_reads_as_a_sentence() -> None:
    entry = {
        "kind": AuditKind.RESOLVE,
        "task": "charge_cards",
        "who": "ana@ops-1",
        "at": 1796000000.0,
        "reason": "the provider's dashboard shows the charge",
        "status": "success",
        "previous": {"status": "failure", "message": "outcome unknown: worker lost", "in_doubt": True},
    }
    assert audit_sentence(entry) == (
        "ana@ops-1 resolved charge_cards as success on 2026-11-30 at 00:53:20 UTC because the "
        "provider's dashboard shows the charge; it was failure, in doubt (outcome unknown: worker lost)"
    )
    resumed = {"kind": AuditKind.RESUME, "task": "ship", "epoch": 1, "result": {"status": "failure"}}
    assert audit_sentence(resumed) == "a resume set aside the epoch-1 result of ship: failure"


def test_rqdag_run_shows_the_data_of_the_final_tasks_cut_to_one_line() -> None:
    tasks = [Task("load", noop), Task("report", noop, depends_on=["load"]), Task("notes", noop)]
    results = {
        "load": TaskResult.success(data=[1, 2, 3]),
        "report": TaskResult.success(data={"total": 6, "rows": list(range(200))}),
        "notes": TaskResult.success(data=None),
    }
    short = final_data_lines(tasks, results, whole=False)
    assert short[0].startswith('report: {"rows": [0, 1, 2') and short[0].endswith("...")
    assert len(short[0]) == len("report: ") + DATA_SHOWN
    assert short[1:] == ["(--show-data prints the whole data)"]
    whole = final_data_lines(tasks, results, whole=True)
    assert len(whole) == 1 and whole[0].endswith('"total": 6\n}')


def test_concepts_md_spells_every_key_as_keys_py_does() -> None:
    concepts = (REPO / "docs" / "concepts.md").read_text(encoding="utf-8")
    spelled = set(re.findall(r"`(rqdag:[^`]+)`", concepts))
    run_keys = set(RunKeys("R").all())
    shared = {v for v in vars(keys).values() if isinstance(v, str) and v.startswith(f"{keys.PREFIX}:")}
    assert run_keys | shared <= spelled, sorted(run_keys | shared - spelled)
    assert spelled <= run_keys | shared, sorted(spelled - run_keys - shared)


def _leaf_commands(command: click.Command, path: tuple[str, ...]) -> list[tuple[str, click.Command]]:
    if not isinstance(command, click.Group):
        return [(" ".join(path), command)]
    return [leaf for name, sub in command.commands.items() for leaf in _leaf_commands(sub, (*path, name))]


def test_every_command_takes_json_but_the_services_the_reference_names() -> None:
    without = {
        name
        for name, command in _leaf_commands(main, ())
        if not any("--json" in p.opts for p in command.params if isinstance(p, click.Option))
    }
    assert without == {"coordinator", "worker", "dashboard", "rq-dashboard"}
    reference = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    assert (
        "`coordinator` and `worker` log instead" in reference and "`dashboard` serves web pages" in reference
    )
    assert "`rq-dashboard` does (RQ's own dashboard" in reference
