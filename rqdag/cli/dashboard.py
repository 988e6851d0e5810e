"""``rqdag dashboard``: serve the web dashboard (needs the ``rqdag[web]`` extra)."""

from __future__ import annotations

import ipaddress

import click

from rqdag.cli.common import CommandFailed, handle_errors, redact, redis_option, require_redis

MIN_TOKEN_LENGTH = 12


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@click.command()
@redis_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8321, show_default=True, help="Port to listen on."
)
@click.option(
    "--token",
    envvar="RQDAG_DASHBOARD_TOKEN",
    show_envvar=True,
    default=None,
    metavar="TOKEN",
    help="Allows actions (cancel, resume, resolve) to whoever gives it; without it: read-only.",
)
@handle_errors
def dashboard(redis_url: str | None, host: str, port: int, token: str | None) -> None:
    """Serve the web dashboard: runs, a run's DAG live, tasks, workers, and a JSON API.

    Reading needs no token. Actions need --token (better: RQDAG_DASHBOARD_TOKEN,
    which no process list shows): API callers send 'Authorization: Bearer TOKEN',
    browsers sign in with it. See docs/dashboard.md.
    """
    url = require_redis(redis_url)
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise click.BadParameter(f"use at least {MIN_TOKEN_LENGTH} characters", param_hint="--token")
    try:  # the optional extra: imported only by this command
        from rqdag.web.app import create_app
        from rqdag.web.server import DashboardServer
    except ImportError as exc:
        raise CommandFailed(f"the dashboard needs the web extra: pip install 'rqdag[web]' ({exc})") from None
    app = create_app(url, token=token)
    app.state.dashboard.client.ping()  # a wrong URL fails here, with a one-line error
    mode = "actions need the token" if token else "read-only (no --token)"
    click.echo(f"rqdag dashboard on http://{host}:{port}/ for {redact(url)}: {mode}", err=True)
    if not _loopback(host):
        click.echo("note: reading needs no token: anyone who reaches this address sees the runs", err=True)
    DashboardServer(app, host, port).run()
