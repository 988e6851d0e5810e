"""``rqdag prune`` and the ``--retention`` option: how long finished runs stay in Redis."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from rqdag.cli.common import handle_errors, json_option, open_client, redis_option
from rqdag.cli.output import print_json
from rqdag.cli.snapshots import export_text
from rqdag.errors import RqdagError
from rqdag.shared.model.duration import format_duration_spec, parse_duration
from rqdag.shared.model.snapshot import write_atomically
from rqdag.shared.store.prune import PRUNABLE_STATUSES, PruneCandidate, PruneCriteria, PruneReport, prune_runs
from rqdag.shared.store.retention import DEFAULT_RETENTION_S, EXPIRING_STATUSES
from rqdag.shared.store.runs import RunStore

F = TypeVar("F", bound=Callable[..., Any])


class Duration(click.ParamType):  # type: ignore[type-arg]
    """Seconds, or a number with a unit: ``45s``, ``30m``, ``12h``, ``7d``, ``2w``."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        """The value in seconds; a bad one is a usage error naming the option."""
        if isinstance(value, float):
            return value
        try:
            return parse_duration(str(value), what="duration")
        except RqdagError:
            self.fail(f"expected seconds or a duration such as 30m, 12h or 7d, got {value!r}", param, ctx)


DURATION = Duration()


def retention_option(func: F) -> F:
    """``--retention``: how long a finished run stays in Redis, unless its workflow says otherwise."""
    return click.option(
        "--retention",
        "retention_s",
        type=DURATION,
        default=format_duration_spec(DEFAULT_RETENTION_S),
        show_default=True,
        envvar="RQDAG_RETENTION",
        show_envvar=True,
        help="How long a finished run stays in Redis (e.g. 12h, 7d; 0 keeps it forever), "
        "unless its workflow sets retention=.",
    )(func)


@click.command()
@redis_option
@click.option(
    "--older-than",
    "older_than_s",
    type=DURATION,
    required=True,
    help="Only runs that finished at least this long ago (e.g. 7d, 12h, 3600).",
)
@click.option(
    "--status",
    "statuses",
    type=click.Choice(PRUNABLE_STATUSES),
    multiple=True,
    help="Only runs with this status (repeatable) [default: succeeded, failed, cancelled].",
)
@click.option("--workflow", default=None, help="Only runs of this workflow.")
@click.option(
    "--export",
    "export_dir",
    type=click.Path(file_okay=False),
    default=None,
    metavar="DIR",
    help="First write each run to DIR/<run id>.json, as 'snapshot export' does.",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted; write nothing.")
@json_option
@handle_errors
def prune(
    redis_url: str | None,
    older_than_s: float,
    statuses: tuple[str, ...],
    workflow: str | None,
    export_dir: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Delete finished runs that ended at least --older-than ago, and clean the run indexes.

    Runs that are pending, running or blocked are never deleted; 'error' runs
    only with --status error. With --export, a run is deleted only once its file
    is written ('rqdag snapshot import' reads it back). Runs are read and deleted
    a batch at a time, so a large prune does not hold Redis up.
    """
    store = RunStore(open_client(redis_url).connection)
    criteria = PruneCriteria(older_than_s, statuses or EXPIRING_STATUSES, workflow)
    exported: dict[str, str] = {}
    before_delete = None
    if export_dir is not None and not dry_run:
        folder = Path(export_dir)
        folder.mkdir(parents=True, exist_ok=True)
        before_delete = _exporter(store, folder, exported)
    now = time.time()
    report = prune_runs(store, criteria, now=now, dry_run=dry_run, before_delete=before_delete)
    if as_json:
        print_json([{**c.to_dict(), "exported": exported.get(c.run_id)} for c in report.pruned])
        return
    click.echo(_summary(report, criteria, now, dry_run, export_dir))


def _exporter(
    store: RunStore, folder: Path, exported: dict[str, str]
) -> Callable[[Sequence[PruneCandidate]], None]:
    """Writes each run of a batch to ``folder`` before the batch is deleted."""

    def export(batch: Sequence[PruneCandidate]) -> None:
        for candidate in batch:
            path = folder / f"{candidate.run_id}.json"
            write_atomically(path, export_text(store, candidate.run_id).encode("utf-8"))
            exported[candidate.run_id] = str(path)

    return export


def _summary(
    report: PruneReport, criteria: PruneCriteria, now: float, dry_run: bool, export_dir: str | None
) -> str:
    counts = Counter(c.status for c in report.pruned)
    by_status = ", ".join(f"{status} {counts[status]}" for status in criteria.statuses if counts[status])
    cutoff = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now - criteria.older_than_s))
    lines = [
        f"{'would prune' if dry_run else 'pruned'} {len(report.pruned)} runs"
        + (f" ({by_status})" if by_status else "")
        + f" that finished before {cutoff}"
        + (f" of workflow {criteria.workflow}" if criteria.workflow else "")
    ]
    if export_dir is not None and not dry_run:
        lines.append(f"exported to {export_dir}")
    if report.changed:
        lines.append(f"kept {len(report.changed)} runs that changed meanwhile: {', '.join(report.changed)}")
    if report.forgotten:
        lines.append(f"dropped {report.forgotten} ids of runs already gone from the run indexes")
    return "\n".join(lines)
