"""The ``rqdag`` command line (click): one group, ``main``, and its commands.

Modules: ``common`` (options, errors, exit codes), ``output`` (tables, JSON), ``logs`` (log
formats), ``live`` (a run's live view), ``drive`` (``run``), ``serve``
(``submit``, ``coordinator``, ``worker``), ``admin`` (``status``, ``runs``,
``cancel``, ``graph``), ``resume``, ``watch``, ``snapshots`` (``snapshot
export|import|diff``), ``prune`` (``prune``, the ``--retention`` option),
``task_commands`` (``inspect``, ``resolve``) and ``reference`` (writes
docs/cli.md from these commands).
"""

from __future__ import annotations

import click

from rqdag.cli.admin import cancel, graph, runs, status
from rqdag.cli.dashboard import dashboard
from rqdag.cli.drive import run
from rqdag.cli.prune import prune
from rqdag.cli.resume import resume
from rqdag.cli.serve import coordinator, submit, worker
from rqdag.cli.snapshots import snapshot
from rqdag.cli.task_commands import inspect_command, resolve
from rqdag.cli.watch import watch

COMMANDS: tuple[click.Command, ...] = (
    run,
    submit,
    coordinator,
    worker,
    status,
    watch,
    runs,
    inspect_command,
    resolve,
    resume,
    cancel,
    snapshot,
    prune,
    graph,
    dashboard,
)


class OrderedGroup(click.Group):
    """Lists its commands in the order they were added (the order of a user's day)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Command names in insertion order."""
        return list(self.commands)


@click.group(cls=OrderedGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rqdag")
def main() -> None:
    """Run workflows (DAGs of tasks) across many machines with Redis and RQ.

    Exit codes: 0 success; 1 the run failed or was cancelled; 2 a usage or
    connection error (one line on stderr); 130 detached from a run by Ctrl-C.
    """


for command in COMMANDS:
    main.add_command(command)

__all__ = ["main"]
