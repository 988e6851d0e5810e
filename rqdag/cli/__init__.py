"""The ``rqdag`` command line (click)."""

from __future__ import annotations

import click

from rqdag.cli.admin import cancel, graph, resume, runs, snapshot, status
from rqdag.cli.serve import coordinator, run, submit, worker


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rqdag")
def main() -> None:
    """Run workflows (DAGs of tasks) across many machines with Redis and RQ."""


for command in (run, submit, coordinator, worker, status, runs, resume, cancel, snapshot, graph):
    main.add_command(command)
