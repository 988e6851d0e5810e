"""``rqdag submit``: store a run for the coordinators (and with --wait, follow it to its end)."""

from __future__ import annotations

import sys
import time

import click
import redis

from rqdag.cli.common import (
    exit_for_status,
    handle_errors,
    json_option,
    open_client,
    param_option,
    parse_params,
    redis_option,
)
from rqdag.cli.drive import report
from rqdag.cli.output import print_json
from rqdag.cli.targets import load_target
from rqdag.client import RunHandle
from rqdag.shared.store.acl import check_permissions
from rqdag.shared.store.driving import read_driver
from rqdag.shared.store.permissions import submit_needs

# `submit --wait` says so when no coordinator has held the run's lease for this long
UNDRIVEN_NOTE_S = 10.0


@click.command()
@click.argument("target")
@redis_option
@param_option
@click.option("--run-id", default=None, help="Run id [default: a unique one].")
@click.option("--resume", is_flag=True, help="If the run id exists, resume that run instead of failing.")
@click.option("--concurrency", type=click.IntRange(min=1), default=None, help="Most tasks in flight at once.")
@click.option("--timeout", type=float, default=None, help="Run deadline in seconds.")
@click.option(
    "--heartbeat-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds without a heartbeat after which a running task counts as lost.",
)
@click.option("--wait", "wait_", is_flag=True, help="Wait for the run to end; exit 1 unless it succeeded.")
@json_option
@handle_errors
def submit(
    target: str,
    redis_url: str | None,
    params: tuple[str, ...],
    run_id: str | None,
    resume: bool,
    concurrency: int | None,
    timeout: float | None,
    heartbeat_timeout: float,
    wait_: bool,
    as_json: bool,
) -> None:
    """Submit TARGET as a new run for the coordinators (prints the run id).

    TARGET is 'package.module:attribute' or 'path/to/file.py:attribute'. With
    --wait, wait for the run to end, print its results and exit 0 if it
    succeeded, 1 if it failed or was cancelled.
    """
    loaded = load_target(target)
    client = open_client(redis_url)
    check_permissions(client.connection, submit_needs(wait=wait_, resume=resume), role="submit")
    handle = client.submit(
        loaded.workflow,
        params=parse_params(params),
        run_id=run_id,
        resume=resume,
        concurrency=concurrency,
        timeout=timeout,
        heartbeat_timeout_s=heartbeat_timeout,
    )
    if not wait_:
        if as_json:
            print_json({"run_id": handle.run_id})
        else:
            click.echo(handle.run_id)
        return
    wait_saying_why(handle)
    sys.exit(exit_for_status(report(handle, as_json)))


def wait_saying_why(handle: RunHandle, note_after_s: float = UNDRIVEN_NOTE_S) -> None:
    """Wait for the run to end; on stderr, say once why it does not move when nobody drives it."""
    said: set[str] = set()
    undriven_since = time.monotonic()
    while True:
        try:
            handle.wait(timeout=note_after_s / 4)
            return
        except TimeoutError:
            pass
        try:
            driver = read_driver(handle.connection, handle.run_id)
        except redis.ResponseError:
            continue  # the note is a courtesy: a user that may not read the lease goes without
        if driver.owner is not None:
            undriven_since = time.monotonic()
            continue
        notes = [driver.problem] if driver.problem else []
        if time.monotonic() - undriven_since >= note_after_s:
            notes.append(f"no coordinator holds the lease of run {handle.run_id} (is one running?)")
        for note in notes:
            if note not in said:
                said.add(note)
                click.echo(f"waiting: {note}", err=True)
