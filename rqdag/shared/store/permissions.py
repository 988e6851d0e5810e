"""May this Redis user do what its role needs? One list per role, checked at start-up.

A coordinator, a worker or ``rqdag submit`` whose Redis user lacks a permission
(``-@scripting``, ``-xadd``, no ``~rq:*`` key pattern) would otherwise fail deep
inside a retry loop, or wait for ever. :func:`.acl.check_permissions` asks the
server about each command the role sends, on a key of each family it touches,
before the role does anything. One list per role: :func:`coordinator_needs`,
:func:`worker_needs`, :func:`submit_needs`; a test runs each role as a user
granted exactly its list (:func:`.acl.acl_rules`), so a command added to a role
without its need fails there.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis
from rq.command import PUBSUB_CHANNEL_TEMPLATE
from rq.defaults import RQ_KEY_PREFIX
from rq.job import Job
from rq.queue import Queue
from rq.results import Result
from rq.suspension import WORKERS_SUSPENDED
from rq.worker import Worker

from rqdag.shared.store.acl import Need
from rqdag.shared.store.keys import (
    ACTIVE_RUNS,
    EXPIRING_RUNS,
    PREFIX,
    RUNS,
    SUBMISSIONS,
    SUBMISSIONS_MAXLEN,
    WORKERS,
    RunKeys,
    coordinator_inbox,
    coordinator_wake,
    profile_key,
    worker_key,
)

RQDAG_KEYS = f"{PREFIX}:*"
RQ_KEYS = f"{RQ_KEY_PREFIX}:*"
_CHECK = "rqdag-permission-check"  # the run id, job id... in the keys the checks name
_SHA = "0" * 40  # EVALSHA is judged on its command and keys, never run
_NO_RQ_COMMANDS = "RQ's commands to this worker (rq's kill-horse, stop-job) will not reach it"
_INFO = Need(("INFO", "server"), optional="RQ cannot read the server's version and uses its Redis 5 commands")


def _n(*args: str) -> Need:
    return Need(args)


def _d(*args: str) -> Need:
    return Need(args, RQDAG_KEYS)


def _q(*args: str) -> Need:
    return Need(args, RQ_KEYS)


def _scripts(run: RunKeys) -> tuple[Need, ...]:
    """Running rqdag's scripts: EVALSHA on a run's keys, SCRIPT LOAD after NOSCRIPT."""
    return (_d("EVALSHA", _SHA, "2", run.meta, run.events), _n("SCRIPT", "LOAD", "return 0"))


def _run_keys(run: RunKeys) -> tuple[Need, ...]:
    """What both services do to a run's keys, directly or inside the scripts."""
    return (
        _d("EXISTS", run.meta),
        _d("EXISTS", run.events),
        _d("HGET", run.meta, "f"),
        _d("HGET", run.results, "f"),
        _d("HSET", run.results, "f", "v"),
        _d("HGET", run.dispatch, "f"),
        _d("HSET", run.dispatch, "f", "v"),
        _d("HDEL", run.dispatch, "f"),
        _d("XADD", run.events, "*", "f", "v"),
    )


_NO_TASK_LOGS = "its tasks' output is not stored (rqdag logs shows none of it)"


def _task_logs(run: RunKeys) -> tuple[Need, ...]:
    """A worker storing its tasks' output (inside the append_logs script)."""
    return tuple(
        Need(args, RQDAG_KEYS, optional=_NO_TASK_LOGS)
        for args in (
            ("XADD", run.logs, "MAXLEN", "~", "1", "*", "f", "v"),
            ("PTTL", run.logs),
            ("PEXPIRE", run.logs, "1"),
        )
    )


def _retention(run: RunKeys) -> tuple[Need, ...]:
    """A coordinator expiring finished runs and sweeping the index of expiring ones."""
    return (
        _d("HMGET", run.meta, "f"),
        _d("PEXPIREAT", run.meta, "1"),
        _d("PTTL", run.meta),
        _d("ZADD", EXPIRING_RUNS, "1", _CHECK),
        _d("ZRANGEBYSCORE", EXPIRING_RUNS, "-inf", "0", "LIMIT", "0", "1"),
        _d("ZREM", EXPIRING_RUNS, _CHECK),
        _d("ZREM", RUNS, _CHECK),
    )


def _holds(run: RunKeys) -> tuple[Need, ...]:
    """A coordinator at a run's waits, sleeps and child runs: signals, timers, starting a child."""
    return (
        _d("HGETALL", run.signals),
        _d("HMGET", run.signals, "f"),
        _d("HGET", run.timers, "f"),
        _d("HSET", run.timers, "f", "v"),
        _d("WATCH", run.meta),
        _d("SET", run.definition, "v"),
        _d("ZADD", RUNS, "1", _CHECK),
        _d("SADD", ACTIVE_RUNS, _CHECK),
        _d("XADD", SUBMISSIONS, "MAXLEN", "~", str(SUBMISSIONS_MAXLEN), "*", "run", _CHECK),
    )


def _registry(name: str) -> tuple[Need, ...]:
    """A worker's entry in the worker registry: written, refreshed, removed."""
    key = worker_key(name)
    return (
        _d("HSET", key, "f", "v"),
        _d("PEXPIRE", key, "1"),
        _d("DEL", key),
        _d("SET", profile_key(_CHECK), "v", "PX", "1"),
        _d("ZADD", WORKERS, "1", name),
        _d("ZREM", WORKERS, name),
        _d("ZREMRANGEBYSCORE", WORKERS, "-inf", "0"),
        _d("PEXPIRE", WORKERS, "1"),
    )


def _loops() -> tuple[Need, ...]:
    """A coordinator's driver loops: their wake stream and inbox, and whether a run handed to one
    is active."""
    wake, inbox = coordinator_wake(_CHECK), coordinator_inbox(_CHECK, 0)
    return (
        _d("PEXPIRE", inbox, "60000"),
        _d("DEL", inbox),
        _d("XREAD", "COUNT", "1", "STREAMS", inbox, "0"),
        _d("HDEL", RunKeys(_CHECK).meta, "f"),
        _d("SISMEMBER", ACTIVE_RUNS, _CHECK),
        _d("XADD", wake, "MAXLEN", "16", "*", "run", _CHECK),
        _d("PEXPIRE", wake, "60000"),
        _d("XREAD", "COUNT", "1", "STREAMS", wake, "0"),
    )


def coordinator_needs(queue: str = "default") -> tuple[Need, ...]:
    """What ``rqdag coordinator`` sends (``queue``: one its tasks go to)."""
    run = RunKeys(_CHECK)
    rq_queue = Queue(queue, connection=redis.Redis())  # names keys only; never connects
    return (
        _n("PING"),
        _n("TIME"),
        _INFO,
        _n("MULTI"),
        _n("EXEC"),
        *_scripts(run),
        *_run_keys(run),
        _d("SMEMBERS", ACTIVE_RUNS),
        _d("SREM", ACTIVE_RUNS, _CHECK),
        _d("EXISTS", run.lease),
        _d("WATCH", run.lease),
        _d("GET", run.lease),
        _d("SET", run.lease, "v"),
        _d("PEXPIRE", run.lease, "1"),
        _d("DEL", run.lease),
        _d("HGETALL", run.meta),
        _d("HSET", run.meta, "f", "v"),
        _d("HINCRBY", run.meta, "f", "1"),
        _d("GET", run.definition),
        _d("HGETALL", run.results),
        _d("HMGET", run.results, "f"),
        _d("HGETALL", run.dispatch),
        _d("HMGET", run.dispatch, "f"),
        _d("HSCAN", run.results, "0"),
        _d("HSCAN", run.dispatch, "0"),
        _d("XREAD", "COUNT", "1", "STREAMS", run.events, "0"),
        _d("XREVRANGE", run.events, "+", "-", "COUNT", "1"),
        _d("XRANGE", run.events, "-", "+", "COUNT", "1"),
        *_retention(run),
        *_holds(run),
        *_loops(),
        _d("ZRANGE", WORKERS, "0", "-1"),  # the worker registry, for routing
        _d("HGETALL", worker_key(_CHECK)),
        _d("MGET", profile_key(_CHECK)),
        _q("HSET", Job.key_for(_CHECK), "f", "v"),
        _q("HGET", Job.key_for(_CHECK), "f"),
        _q("RPUSH", rq_queue.key, "v"),
        _q("SADD", Queue.redis_queues_keys, rq_queue.key),
        _q("LPOS", rq_queue.intermediate_queue_key, "v"),
    )


def _dequeue(served: Sequence[Queue]) -> tuple[Need, ...]:
    """RQ's blocking take, and a concurrent worker's batch takes and give-backs (when it stops)."""
    return (
        *(_q("BLMOVE", q.key, q.intermediate_queue_key, "LEFT", "RIGHT", "1") for q in served),
        *(_q("LMOVE", q.key, q.intermediate_queue_key, "LEFT", "RIGHT") for q in served),
        *(_q("LPUSH", q.key, "v") for q in served),
    )


def worker_needs(name: str, queues: Sequence[str] = ("default",)) -> tuple[Need, ...]:
    """What ``rqdag worker --name NAME --queues ...`` sends: rqdag's scripts and RQ's worker loop."""
    run = RunKeys(_CHECK)
    names = list(queues) or ["default"]
    rq_queue = Queue(names[0], connection=redis.Redis())  # names keys only; never connects
    job = Job.key_for(_CHECK)
    worker = Worker.redis_worker_namespace_prefix + name
    started = rq_queue.started_job_registry.key
    served = [Queue(n, connection=rq_queue.connection) for n in names]
    return (
        _n("PING"),
        _n("TIME"),
        _INFO,
        _n("MULTI"),
        _n("EXEC"),
        *_scripts(run),
        *_run_keys(run),
        *_task_logs(run),
        *_registry(name),
        *_dequeue(served),
        _q("LRANGE", rq_queue.key, "0", "0"),
        _q("LREM", rq_queue.intermediate_queue_key, "0", "v"),
        _q("EXISTS", WORKERS_SUSPENDED),
        _q("WATCH", job),
        _q("HGETALL", job),
        _q("HSET", job, "f", "v"),
        _q("SMEMBERS", job),
        _q("PERSIST", job),
        _q("EXPIRE", job, "1"),
        _q("DEL", job),
        _q("XADD", Result.get_key(_CHECK), "*", "f", "v"),  # type: ignore[no-untyped-call]
        _q("HSET", worker, "f", "v"),
        _q("HINCRBY", worker, "f", "1"),
        _q("HINCRBYFLOAT", worker, "f", "1"),
        _q("SADD", Worker.redis_workers_keys, worker),
        _q("SREM", Worker.redis_workers_keys, worker),
        _q("SMEMBERS", Worker.redis_workers_keys),
        _q("SET", rq_queue.registry_cleaning_key, "1"),
        _q("ZADD", started, "1", _CHECK),
        _q("ZREM", started, _CHECK),
        _q("ZRANGE", started, "0", "0"),
        _q("ZRANGEBYSCORE", started, "0", "1"),
        _q("ZREMRANGEBYSCORE", rq_queue.failed_job_registry.key, "0", "1"),
        Need(("CLIENT", "SETNAME", "x"), optional="`rq info` shows no address for this worker"),
        Need(("CLIENT", "INFO"), optional="`rq info` shows no address for this worker"),
        *(
            Need((command, PUBSUB_CHANNEL_TEMPLATE % name), channel=True, optional=_NO_RQ_COMMANDS)
            for command in ("SUBSCRIBE", "UNSUBSCRIBE")
        ),
    )


def submit_needs(*, wait: bool = False, resume: bool = False) -> tuple[Need, ...]:
    """What ``rqdag submit`` sends (with ``--wait`` and ``--resume``, what those add)."""
    run = RunKeys(_CHECK)
    needs = [
        _n("MULTI"),
        _n("EXEC"),
        _d("WATCH", run.meta),
        _d("EXISTS", run.meta),
        _d("HSET", run.meta, "f", "v"),
        _d("SET", run.definition, "v"),
        _d("HSET", run.results, "f", "v"),
        _d("ZADD", RUNS, "1", _CHECK),
        _d("SADD", ACTIVE_RUNS, _CHECK),
        _d("XADD", SUBMISSIONS, "MAXLEN", "~", str(SUBMISSIONS_MAXLEN), "*", "run", _CHECK),
    ]
    if wait or resume:
        needs += [_d("HGETALL", run.meta), _d("HGETALL", run.results), _d("GET", run.definition)]
    if wait:
        needs += [
            _d("GET", run.lease),
            _d("HGET", run.meta, "f"),
            _d("HGETALL", run.dispatch),
            _d("XREAD", "COUNT", "1", "STREAMS", run.events, "0"),
            _d("XREVRANGE", run.events, "+", "-", "COUNT", "1"),
        ]
    if resume:
        needs += [
            _d("PTTL", run.meta),
            _d("PERSIST", run.meta),
            _d("ZREM", EXPIRING_RUNS, _CHECK),
            _d("XADD", run.audit, "*", "f", "v"),
            _d("XADD", run.events, "*", "f", "v"),
            _d("HDEL", run.results, "f"),
            _d("DEL", run.dispatch),
        ]
    return tuple(needs)
