"""Dramatiq's side of section 6: its broker on the suite's Redis and the no-op actor.

The worker command is ``python -m dramatiq bench.peer_dramatiq_app:setup_worker``:
Dramatiq's CLI calls :func:`setup_worker` in every worker process it starts,
which reads the suite's Redis URL from ``$BENCH_PEER_REDIS_URL``. The bench
process builds its messages by actor name and does not declare the actor.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

URL_ENV = "BENCH_PEER_REDIS_URL"
QUEUE = "bench-peer"
ACTOR = "noop"


def noop() -> None:
    """A Dramatiq actor that does nothing."""
    return None


def make_broker(url: str) -> RedisBroker:
    """Dramatiq's Redis broker with its default middleware and JSON encoder."""
    return RedisBroker(url=url)  # type: ignore[no-untyped-call]


def setup_worker() -> None:
    """Make the broker on ``$BENCH_PEER_REDIS_URL`` the global one and declare the no-op actor on it."""
    broker = make_broker(os.environ[URL_ENV])
    dramatiq.set_broker(broker)
    # pipe_ignore: in a pipeline each message ignores the result of the one before, as Celery's .si()
    dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE, broker=broker, pipe_ignore=True)(noop)
