"""``rqdag rq-dashboard``: RQ's own web dashboard (rq-dashboard), set up to read rqdag's jobs.

rqdag writes every RQ job with RQ's JSON serializer. rq-dashboard 0.9 reads jobs
with pickle unless started with ``--json``, and even then its workers view
(``/<n>/data/workers.json``) builds the workers with RQ's default (pickle)
serializer: the current job of every busy worker fails to load, and the view
answers HTTP 500 whenever a task runs (with any JSON RQ worker, rqdag's or
not). This command serves the same app with the JSON serializer in every view:
its own jobs views as ``--json`` sets them, and the workers view replaced by the
same view reading workers with the JSON serializer. Nothing is ever unpickled.

rq-dashboard is an optional extra: ``pip install 'rqdag[rq-dashboard]'``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import click
from rq.serializers import JSONSerializer
from rq.worker import Worker

from rqdag.cli.common import CommandFailed, handle_errors, redis_option, require_redis

WORKERS_VIEW = "rq_dashboard.list_workers"


def _dashboard_modules() -> tuple[ModuleType, ModuleType]:
    try:
        import rq_dashboard.cli as dashboard_cli  # an optional extra: imported only when asked for
        import rq_dashboard.web as dashboard_web
    except ImportError as exc:
        raise CommandFailed(
            f"rq-dashboard is not installed ({exc}): pip install 'rqdag[rq-dashboard]'"
        ) from None
    return dashboard_cli, dashboard_web


def build_app(redis_url: str) -> Any:
    """rq-dashboard's Flask app on ``redis_url``, reading every job and worker with RQ's JSON serializer."""
    dashboard_cli, web = _dashboard_modules()
    app = dashboard_cli.make_flask_app(None, None, None, "")
    app.config["RQ_DASHBOARD_REDIS_URL"] = redis_url
    app.config["DEPRECATED_OPTIONS"] = []
    web.config.serializer = JSONSerializer  # what rq-dashboard's own --json sets
    web.setup_rq_connection(app)
    app.view_functions[WORKERS_VIEW] = web.jsonify(_workers_view(web))
    return app


def _workers_view(web: ModuleType) -> Any:
    """rq-dashboard's workers view, with the workers (and so their current jobs) read as JSON."""

    def list_workers(instance_number: int) -> dict[str, Any]:
        connection = web.current_app.redis_conn  # the Redis of the instance this request is for
        workers = Worker.all(connection=connection, serializer=JSONSerializer)
        rows = [
            {
                "name": worker.name,
                "pid": worker.pid,
                "queues": [q.name for q in worker.queues],
                "state": str(worker.get_state()),
                "current_job": web.serialize_current_job(worker.get_current_job()),
                "last_heartbeat": worker.last_heartbeat,
                "birth_date": worker.birth_date,
                "successful_job_count": worker.successful_job_count,
                "failed_job_count": worker.failed_job_count,
                "total_working_time": worker.total_working_time,
                "version": getattr(worker, "version", ""),
                "python_version": getattr(worker, "python_version", ""),
            }
            for worker in workers
        ]
        rows.sort(key=lambda w: (w["state"], w["queues"], w["name"]))
        return {"workers": rows}

    return list_workers


@click.command("rq-dashboard")
@redis_option
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=9181, show_default=True, help="Port.")
@handle_errors
def rq_dashboard(redis_url: str | None, bind: str, port: int) -> None:
    """Serve rq-dashboard on rqdag's RQ queues, jobs and workers (the rq-dashboard extra)."""
    app = build_app(require_redis(redis_url))
    click.echo(f"rq-dashboard on http://{bind}:{port}/ (Ctrl-C stops it)", err=True)
    app.run(host=bind, port=port)
