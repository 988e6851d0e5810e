"""Celery's side of section 6: the app (Redis broker and result backend, JSON) and the no-op task.

``python -m bench.peer_celery_app URL [worker options]`` runs ``celery worker``
on an app made by :func:`make_app`; its prefork children are forked from that
process, so they have the task. The bench process makes its own app with the
same settings to send tasks and read results.
"""

from __future__ import annotations

import sys

from celery import Celery

NOOP = "bench.peer.noop"
# Celery's defaults, spelled out; the prefetch multiplier stays at its default (4).
SETTINGS = {
    "task_serializer": "json",
    "result_serializer": "json",
    "accept_content": ["json"],
    "broker_connection_retry_on_startup": True,  # silences a deprecation warning, same behaviour
}
# kombu's Redis transport writes a queue's bindings once, when a worker declares the
# queue; a reset between runs keeps them, or published tasks would have no queue.
KEEP_ON_RESET = (b"_kombu.binding.",)


def noop() -> None:
    """A Celery task that does nothing."""
    return None


def make_app(url: str) -> Celery:
    """The app on ``url`` (database 0) as broker and result backend, with the no-op task."""
    app = Celery("bench-peer", broker=url, backend=url, set_as_current=False)
    app.conf.update(SETTINGS)
    app.task(name=NOOP)(noop)
    return app


def main(argv: list[str]) -> int:
    """Entry point: ``URL [celery worker options]``."""
    if not argv:
        print("usage: python -m bench.peer_celery_app URL [celery worker options]", file=sys.stderr)
        return 2
    make_app(argv[0]).worker_main(["worker", *argv[1:]])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
