"""``rqdag watch RUN``: follow a run live until it ends; the exit code is its outcome."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.live import Live

from rqdag.cli.common import (
    EXIT_INTERRUPTED,
    exit_for_status,
    handle_errors,
    interrupt_choice,
    interrupt_option,
    json_option,
    redis_option,
)
from rqdag.cli.live import RunFollower, RunView, plain_line, render_view
from rqdag.cli.output import (
    counts_line,
    print_json_line,
    styled,
)
from rqdag.cli.stores import data_dir_option, reading_client, undriven_note
from rqdag.client import RunHandle


def _follow_json(follower: RunFollower) -> RunView:
    last: RunView | None = None
    for view in follower.views():
        if last is None or view.signature() != last.signature():
            print_json_line(view.to_dict())
        last = view
    assert last is not None
    return last


def _follow_plain(follower: RunFollower) -> RunView:
    last: RunView | None = None
    for view in follower.views():
        if last is None or view.signature() != last.signature():
            click.echo(plain_line(view))
            sys.stdout.flush()
        last = view
    assert last is not None
    return last


def _follow_live(follower: RunFollower, out: Console) -> RunView:
    last: RunView | None = None
    with Live(console=out, refresh_per_second=4) as live:
        for view in follower.views():
            live.update(render_view(view))
            last = view
    assert last is not None
    return last


def _follow(follower: RunFollower, as_json: bool) -> RunView:
    if as_json:
        return _follow_json(follower)
    out = Console(highlight=False)
    if out.is_terminal:
        return _follow_live(follower, out)
    return _follow_plain(follower)


def _outcome(view: RunView, as_json: bool) -> int:
    code = exit_for_status(view.status)
    if as_json:
        print_json_line(
            {
                "type": "outcome",
                "run_id": view.run_id,
                "status": view.status,
                "exit_code": code,
                "total": view.total,
                "done": view.done,
                "counts": view.counts,
            }
        )
    else:
        Console(highlight=False).print(
            f"run {view.run_id} (epoch {view.epoch}): [bold]{styled(view.status)}[/] - "
            f"{counts_line(view.counts, view.total)}"
        )
    return code


@click.command()
@click.argument("run_id")
@redis_option
@data_dir_option
@interrupt_option("detach")
@json_option
@handle_errors
def watch(run_id: str, redis_url: str | None, data_dir: str, on_interrupt: str, as_json: bool) -> None:
    """Follow RUN_ID live until it ends: progress, counts by status, ETA, tasks in flight.

    The exit code is the run's outcome: 0 succeeded, 1 failed or cancelled. Ctrl-C
    detaches (exit 130) and the run goes on; with --on-interrupt cancel (or ask,
    and the answer cancel) the run is cancelled and watched to its end.
    With --json: one JSON object per line for every change, the last one the outcome.
    While no coordinator drives the run, the view says so. With no Redis given,
    follows a run of the embedded store of 'rqdag run'.
    """
    with reading_client(redis_url, data_dir) as client:
        handle = client.run(run_id)
        note = undriven_note(run_id, embedded=not redis_url)
        follower = RunFollower(client.connection, run_id, undriven_note=note)
        try:
            view = _follow(follower, as_json)
        except KeyboardInterrupt:
            if interrupt_choice(on_interrupt) != "cancel":
                click.echo(
                    f"detached: run {run_id} goes on; 'rqdag watch {run_id}' to follow it again", err=True
                )
                sys.exit(EXIT_INTERRUPTED)
            view = _cancel_and_follow(handle, follower, as_json)
    sys.exit(_outcome(view, as_json))


def _cancel_and_follow(handle: RunHandle, follower: RunFollower, as_json: bool) -> RunView:
    handle.cancel("cancelled from rqdag watch")
    click.echo(f"cancel requested for run {handle.run_id}; waiting for it to end", err=True)
    try:
        return _follow(follower, as_json)
    except KeyboardInterrupt:
        click.echo(f"detached: run {handle.run_id} is being cancelled", err=True)
        sys.exit(EXIT_INTERRUPTED)
