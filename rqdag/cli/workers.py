"""``rqdag workers``: the live workers, from the worker registry."""

from __future__ import annotations

import time

import click
from rich.text import Text

from rqdag.cli.common import handle_errors, json_option, open_client, redis_option
from rqdag.cli.live import format_duration
from rqdag.cli.output import console, make_table, print_json, show
from rqdag.shared.store.workers import WorkerInfo, live_workers


def _current(worker: WorkerInfo, now: float) -> str:
    task = worker.current
    if task is None:
        return "idle"
    return f"{task.run_id} {task.task} #{task.attempt} for {format_duration(now - task.started_at)}"


def _row(worker: WorkerInfo, now: float) -> list[str | Text]:
    beat = "-" if worker.heartbeat_at is None else f"{max(now - worker.heartbeat_at, 0.0):.1f}s ago"
    return [
        Text(worker.name),
        Text(worker.host),
        str(worker.pid),
        Text(",".join(worker.queues)),
        worker.worker_class,
        Text(",".join(worker.modules)),
        str(len(worker.functions)),
        f"rqdag {worker.rqdag_version}, py {worker.python_version}",
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(worker.started_at)),
        beat,
        Text(_current(worker, now)),
    ]


@click.command()
@redis_option
@click.option("--functions", "show_functions", is_flag=True, help="Also list each worker's task functions.")
@json_option
@handle_errors
def workers(redis_url: str | None, show_functions: bool, as_json: bool) -> None:
    """List the live workers: host, pid, queues, class, task modules, versions, current task.

    Every rqdag worker publishes itself in Redis and refreshes that entry on its
    heartbeat; one that stops leaves at once, one that dies drops out when its
    heartbeat limit (--heartbeat-timeout, else three heartbeat intervals) passes.
    """
    found = live_workers(open_client(redis_url).connection)
    if as_json:
        print_json({"workers": [w.to_dict() for w in found]})
        return
    out = console()
    if not found:
        out.print("no live workers")
        return
    now = time.time()
    columns = (
        "worker",
        "host",
        "pid",
        "queues",
        "class",
        "modules",
        "functions",
        "versions",
        "started",
        "heartbeat",
        "current task",
    )
    show(out, make_table(columns, [_row(w, now) for w in found]))
    if show_functions:
        for worker in found:
            out.print(Text(f"{worker.name}: {', '.join(worker.functions) or '-'}"))
