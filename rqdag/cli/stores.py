"""Where a reading command reads: the Redis given, else the embedded store of ``rqdag run``.

With no ``--redis`` and no ``REDIS_URL``, ``status``, ``runs``, ``inspect``,
``watch``, ``graph`` and ``snapshot export|diff`` read the store ``rqdag run``
left in ``./.rqdag/`` (or ``--data-dir``): the server of the run that holds the
folder, or one started for the command and stopped after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from rqdag.cli.common import CommandFailed, open_client
from rqdag.client import Client
from rqdag.local.embedded import EmbeddedRedis

DEFAULT_DATA_DIR = ".rqdag"

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="The embedded store read when no Redis is given (what 'rqdag run' wrote there).",
)


@contextmanager
def reading_client(redis_url: str | None, data_dir: str = DEFAULT_DATA_DIR) -> Iterator[Client]:
    """A Client of ``redis_url``, or of the embedded store in ``data_dir``; closed on the way out."""
    if redis_url:
        client = open_client(redis_url)
        try:
            yield client
        finally:
            client.connection.close()
        return
    embedded = EmbeddedRedis(Path(data_dir).resolve())
    if not embedded.exists:
        raise CommandFailed(
            f"no Redis given: pass --redis URL or set REDIS_URL (no embedded store in {data_dir} "
            "either: 'rqdag run' makes one)"
        )
    with embedded.reading() as url:
        client = Client(url)
        try:
            yield client
        finally:
            client.connection.close()


def undriven_note(run_id: str, embedded: bool) -> str:
    """What to say of an unfinished run whose lease nobody holds."""
    if embedded:
        return (
            f"no coordinator is driving this run: run the same `rqdag run` command with --run-id {run_id} "
            "to go on"
        )
    return "no coordinator is driving this run: start `rqdag coordinator`"
