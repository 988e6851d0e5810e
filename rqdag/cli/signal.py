"""``rqdag signal``: send a signal to a wait task of a run."""

from __future__ import annotations

from typing import Any

import click

from rqdag.cli.common import handle_errors, json_option, open_client, redis_option
from rqdag.cli.output import print_json
from rqdag.cli.task_commands import operator
from rqdag.errors import RqdagError
from rqdag.shared.model.codec import loads
from rqdag.shared.model.task import TaskStatus
from rqdag.shared.store.runs import RunStore
from rqdag.shared.store.signals import signal_task


def send_signal(
    store: RunStore,
    run_id: str,
    task: str,
    *,
    status: str,
    data: str | None,
    reason: str | None,
    who: str,
) -> dict[str, Any]:
    """Parse ``data`` (JSON) and send the signal; the CLI and the dashboard share this.

    Returns the ``--json`` document: the run, the task and the signal as stored.
    """
    try:
        value = None if data is None or data == "" else loads(data, what="--data")
    except RqdagError as exc:
        raise click.BadParameter(str(exc), param_hint="--data") from None
    signal = signal_task(store, run_id, task, status=TaskStatus(status), data=value, reason=reason, who=who)
    return {"run_id": run_id, "task": task, "signal": signal}


@click.command()
@click.argument("run_id")
@click.argument("task")
@redis_option
@click.option("--data", default=None, metavar="JSON", help="The wait's data, as JSON (with success).")
@click.option(
    "--status",
    "status_",
    type=click.Choice([TaskStatus.SUCCESS.value, TaskStatus.FAILURE.value]),
    default=TaskStatus.SUCCESS.value,
    show_default=True,
    help="success completes the wait with --data; failure fails it with --reason.",
)
@click.option("--reason", default=None, help="Why; kept in the run's audit trail.")
@json_option
@handle_errors
def signal(
    run_id: str,
    task: str,
    redis_url: str | None,
    data: str | None,
    status_: str,
    reason: str | None,
    as_json: bool,
) -> None:
    """Send a signal to the wait TASK of a run (an approval, say).

    The wait succeeds with --data, or fails with --status failure --reason.
    A signal sent before the wait is reached is kept and used when it is. Who
    ($USER@host), when and the data go to the run's audit trail. A task that
    is not a wait, or a wait that has finished, is an error.
    """
    store = RunStore(open_client(redis_url).connection)
    doc = send_signal(store, run_id, task, status=status_, data=data, reason=reason, who=operator())
    if as_json:
        print_json(doc)
        return
    click.echo(f"run {run_id}: wait {task} signalled {status_} by {doc['signal']['who']}")
