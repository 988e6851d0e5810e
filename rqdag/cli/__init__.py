"""The ``rqdag`` command line (click): one group, ``main``, and its commands.

Modules: ``common`` (options, errors, exit codes), ``output`` (tables, JSON), ``logs`` (log
formats), ``live`` (a run's live view), ``drive`` (``run``), ``serve``
(``submit``, ``coordinator``, ``worker``), ``admin`` (``status``, ``runs``,
``cancel``, ``graph``), ``resume``, ``watch``, ``snapshots`` (``snapshot
export|import|diff``), ``prune`` (``prune``, the ``--retention`` option),
``task_commands`` (``inspect``, ``resolve``), ``signal``, ``task_logs`` (``logs``, what tasks
wrote), ``rq_dashboard`` (rq-dashboard set up for rqdag's jobs), ``workers``
(``workers``) and ``reference`` (writes
docs/cli.md from these commands).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from rqdag.cli.admin import cancel, graph, runs, status
from rqdag.cli.common import EXIT_RUN_FAILED, one_line
from rqdag.cli.dashboard import dashboard
from rqdag.cli.drive import run
from rqdag.cli.prune import prune
from rqdag.cli.resume import resume
from rqdag.cli.rq_dashboard import rq_dashboard
from rqdag.cli.serve import coordinator, worker
from rqdag.cli.signal import signal
from rqdag.cli.snapshots import snapshot
from rqdag.cli.submit import submit
from rqdag.cli.task_commands import inspect_command, resolve
from rqdag.cli.task_logs import logs
from rqdag.cli.watch import watch
from rqdag.cli.workers import workers

COMMANDS: tuple[click.Command, ...] = (
    run,
    submit,
    coordinator,
    worker,
    workers,
    status,
    watch,
    runs,
    inspect_command,
    logs,
    resolve,
    signal,
    resume,
    cancel,
    snapshot,
    prune,
    graph,
    dashboard,
    rq_dashboard,
)


class OrderedGroup(click.Group):
    """Lists its commands in the order they were added (the order of a user's day).

    Every usage error is one line on stderr, ``error: ...`` (with the command's
    ``--help`` to try), and exit code 2, like the errors the commands raise.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Command names in insertion order."""
        return list(self.commands)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the CLI; usage errors as one line."""
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()  # a group given no command: its help
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            if not standalone_mode:
                raise
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"error: {one_line(exc.format_message())}{where}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            if not standalone_mode:
                raise
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            if not standalone_mode:
                raise
            click.echo("error: aborted", err=True)
            sys.exit(EXIT_RUN_FAILED)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


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
