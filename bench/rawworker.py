"""The raw RQ reference worker: ``rq.worker.SimpleWorker`` with RQ's JSON serializer.

``python -m bench.rawworker URL QUEUE NAME`` runs one until SIGTERM (a warm
shutdown, RQ's own handling). It is set up as rqdag's worker sets up RQ: JSON
serializer, no scheduler, WARNING logs, so that the two sides differ only by
what rqdag adds.
"""

from __future__ import annotations

import sys

import redis
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker

LOG_LEVEL = "WARNING"


def run(url: str, queue: str, name: str) -> None:
    """Run a SimpleWorker on ``queue`` until it is stopped."""
    connection = redis.Redis.from_url(url)
    try:
        worker = SimpleWorker([queue], name=name, connection=connection, serializer=JSONSerializer)
        worker.work(burst=False, logging_level=LOG_LEVEL, with_scheduler=False)
    finally:
        connection.close()


def main(argv: list[str]) -> int:
    """Entry point: ``URL QUEUE NAME``."""
    if len(argv) != 3:
        print("usage: python -m bench.rawworker URL QUEUE NAME", file=sys.stderr)
        return 2
    run(*argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
