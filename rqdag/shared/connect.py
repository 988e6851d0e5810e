"""One connection policy: the redis-py client of every rqdag process, built from a URL.

URLs: ``redis://``, ``unix://``, and ``rediss://`` for TLS (the server's
certificate is verified; redis-py's ``ssl_*`` options go in the query string). A
user name and password go in the URL: ``redis://user:secret@host:6379/0``.
Options in the query string win over the policy (redis-py's rule), so an
operator can tune one (``?socket_timeout=60``) without a code change.
"""

from __future__ import annotations

import copy
import logging
import os
import resource
from typing import Any

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.connection import Connection, ConnectionInterface
from redis.retry import Retry

from rqdag.errors import RqdagError

URL_ENV = "REDIS_URL"

# redis-py's default of 5 s is shorter than a blocking read on a busy server; rqdag's
# own blocking reads (XREAD BLOCK) wait in slices well under this.
SOCKET_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0
# A connection idle this long is PINGed before it is used again, so one that a
# firewall or a Redis restart dropped is replaced instead of failing a command.
HEALTH_CHECK_INTERVAL_S = 30
RETRIES = 3
RETRY_BASE_S = 0.05
RETRY_CAP_S = 1.0
# One connection per thread that talks to Redis at once (a worker's job and heartbeat
# threads, a CLI's live view): a plain pool raises "Too many connections" past this,
# so a process with many threads (a coordinator's drivers) sizes its own.
DEFAULT_POOL_SIZE = 100
# How long a thread of a blocking pool waits for a connection when all are in use.
POOL_TIMEOUT_S = 30.0
# File descriptors a process keeps beside its Redis connections (logs, pipes, modules).
SPARE_FILES = 64

log = logging.getLogger("rqdag.connect")


def connect(
    url: str | None = None,
    *,
    pool_size: int = DEFAULT_POOL_SIZE,
    blocking: bool = False,
    pool_timeout: float = POOL_TIMEOUT_S,
    socket_timeout: float = SOCKET_TIMEOUT_S,
    connect_timeout: float = CONNECT_TIMEOUT_S,
    retries: int = RETRIES,
) -> redis.Redis:
    """A client of ``url`` (or ``$REDIS_URL``) with rqdag's timeouts, health checks and retries.

    A command that fails on a connection error is sent again up to ``retries``
    times, with jittered exponential backoff. A timeout is not retried: the
    command may have run. (Every atomic step is fenced or idempotent when
    replayed, and a WATCHed transaction is never retried: it fails as a lost lease.)
    Replies stay bytes (``decode_responses`` off): RQ shares these clients and
    needs them so; rqdag's readers decode with :func:`rqdag.shared.store.records.text`.

    At most ``pool_size`` connections are open at once; each is opened when a thread
    first needs one. Past that a thread fails at once with "Too many connections",
    or with ``blocking`` waits up to ``pool_timeout`` seconds for one to be handed
    back (then ``ConnectionError``).
    """
    url = url or os.environ.get(URL_ENV)
    if not url:
        raise RqdagError(f"no Redis URL given (pass one, or set {URL_ENV})")
    if pool_size < 1:
        raise RqdagError(f"a Redis connection pool needs at least one connection, not {pool_size}")
    retry = Retry(
        ExponentialWithJitterBackoff(base=RETRY_BASE_S, cap=RETRY_CAP_S),
        retries,
        supported_errors=(redis.ConnectionError,),
    )
    options: dict[str, Any] = {"timeout": pool_timeout} if blocking else {}
    pool = (_BlockingPolicyPool if blocking else _PolicyPool).from_url(
        url,
        retry_policy=retry,
        max_connections=pool_size,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        **options,
    )
    return redis.Redis(connection_pool=pool)


def allow_open_files(connections: int) -> int:
    """Raise this process's soft limit of open files so ``connections`` sockets fit; returns it.

    The soft limit is often 1,024 (systemd's default) while the hard limit is far
    higher: a coordinator driving a thousand runs would fail with "Too many open
    files". It is raised up to the hard limit, with a warning when even that is short.
    """
    needed = connections + SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    if raised < needed:
        log.warning(
            "this process may open only %d files (its hard limit), fewer than the %d its Redis"
            " connections may need; raise the limit (ulimit -n)",
            raised,
            needed,
        )
    return raised


class _PolicyPool(redis.ConnectionPool):
    """A connection pool whose connections retry by rqdag's policy.

    The retry is set on each new connection instead of being passed in the
    connection kwargs: RQ's spawning worker rebuilds its client in the job's
    process from ``repr()`` of those kwargs, so they must hold plain values only.
    """

    def __init__(self, *, retry_policy: Retry, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._retry_policy = retry_policy

    def make_connection(self) -> ConnectionInterface:
        """A new connection with its own copy of the retry policy."""
        connection = super().make_connection()
        connection.retry = copy.deepcopy(self._retry_policy)  # type: ignore[attr-defined]
        return connection


class _BlockingPolicyPool(_PolicyPool, redis.BlockingConnectionPool):
    """A :class:`_PolicyPool` whose threads wait for a free connection instead of failing."""


def thread_client(client: redis.Redis, *, connections: int = 4) -> redis.Redis:
    """A client of the same server and policy as ``client``, for the use of one thread only.

    A coordinator's driver loop sends thousands of commands a second from one
    thread: a pool shared by threads costs it a lock, a ``select()`` and a few
    counters per command, about half of a plain command's CPU. This client's
    pool hands its connections out and back without those (see :class:`_ThreadPool`);
    at most ``connections`` are open (a pipeline holds one while the thread may send
    a command on another).
    """
    shared = client.connection_pool
    retry = getattr(shared, "_retry_policy", None) or Retry(ExponentialWithJitterBackoff(), 0)
    pool = _ThreadPool(
        retry_policy=retry,
        connection_class=shared.connection_class,
        max_connections=connections,
        **shared.connection_kwargs,
    )
    return redis.Redis(connection_pool=pool)


class _ThreadPool(_PolicyPool):
    """The pool of a :func:`thread_client`: one thread takes and gives back its connections.

    What a pool shared by threads checks on each hand-out is left out: the lock
    (one thread), and the ``select()`` that finds a connection given back with a
    reply unread (redis-py disconnects a connection whose command failed or timed
    out, so none is given back mid-reply). A connection still connects lazily, and
    redis-py's health check still PINGs one idle longer than its interval.
    """

    def get_connection(self, command_name: Any = None, *keys: Any, **options: Any) -> Connection:
        """An idle connection (or a new one), connected."""
        try:
            connection: Connection = self._available_connections.pop()
        except IndexError:
            connection = self.make_connection()  # type: ignore[assignment]
        self._in_use_connections.add(connection)
        try:
            connection.connect()  # type: ignore[no-untyped-call]
        except BaseException:
            self.release(connection)
            raise
        return connection

    def release(self, connection: Connection) -> None:  # type: ignore[override]
        """Take ``connection`` back (closed first when redis-py asks for a reconnect)."""
        self._in_use_connections.discard(connection)
        if connection.should_reconnect():  # type: ignore[no-untyped-call]
            connection.disconnect()  # type: ignore[no-untyped-call]
        self._available_connections.append(connection)
