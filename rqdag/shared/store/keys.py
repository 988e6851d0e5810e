"""Every Redis key rqdag uses, spelled in one place.

All keys of a run carry the hash tag ``{run_id}`` so that a run's Lua scripts
touch a single Redis Cluster slot.
"""

from __future__ import annotations

import hashlib
import re

from rqdag.errors import RqdagError

PREFIX = "rqdag"
RUNS = f"{PREFIX}:runs"  # sorted set: run id -> creation time
ACTIVE_RUNS = f"{PREFIX}:runs:active"  # set: runs that still need a coordinator
EXPIRING_RUNS = f"{PREFIX}:runs:expiring"  # sorted set: finished run id -> unix time its keys expire
CODE = f"{PREFIX}:code"  # hash: task function import path -> identity of the code workers run for it
# stream: one entry per run submitted or resumed, that wakes every coordinator at once;
# trimmed to about SUBMISSIONS_MAXLEN entries (MAXLEN ~) by each append, so it never grows
SUBMISSIONS = f"{PREFIX}:submissions"
SUBMISSIONS_MAXLEN = 1_000
WORKERS = f"{PREFIX}:workers"  # sorted set: worker name -> unix time its registration lapses

RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_JOB_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is a valid run id, else raise RqdagError saying why."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id):
        raise RqdagError(
            f"invalid run id {run_id!r}: use 1-128 letters, digits, '_', '.', ':' or '-', "
            "starting with a letter or digit"
        )
    return run_id


class RunKeys:
    """The keys of one run."""

    __slots__ = (
        "audit",
        "child_rows",
        "definition",
        "dispatch",
        "events",
        "expansions",
        "lease",
        "logs",
        "meta",
        "results",
        "run_id",
        "signals",
        "timers",
    )

    def __init__(self, run_id: str) -> None:
        self.run_id = check_run_id(run_id)
        base = f"{PREFIX}:run:{{{run_id}}}"
        self.meta = f"{base}:meta"
        self.definition = f"{base}:def"
        self.results = f"{base}:results"
        self.dispatch = f"{base}:dispatch"
        self.events = f"{base}:events"
        self.lease = f"{base}:lease"
        self.audit = f"{base}:audit"
        self.logs = f"{base}:logs"  # stream: what the run's tasks wrote (logging, stdout, stderr)
        self.signals = f"{base}:signals"  # hash: wait task -> the signal that came for it
        self.timers = f"{base}:timers"  # hash: "epoch:task" -> unix time a wait's or sleep's timer fires
        self.child_rows = f"{base}:children"  # hash: child task -> its mapped task, index, expansion id, item
        self.expansions = f"{base}:expansions"  # hash: mapped task -> its expansion's id and child count

    def all(self) -> list[str]:
        """Every key of the run (for deletion or export)."""
        return [
            self.meta,
            self.definition,
            self.results,
            self.dispatch,
            self.events,
            self.lease,
            self.audit,
            self.logs,
            self.signals,
            self.timers,
            self.child_rows,
            self.expansions,
        ]

    def retained(self) -> list[str]:
        """The keys a retention period expires: all but the lease, which keeps its own short TTL."""
        return [key for key in self.all() if key != self.lease]


def worker_key(name: str) -> str:
    """Hash of one live worker: its info, current task and last heartbeat (expires with it)."""
    return f"{PREFIX}:worker:{name}"


def profile_key(profile: str) -> str:
    """String holding the task functions (JSON list) of the workers of one capability profile."""
    return f"{PREFIX}:profile:{profile}"


def capability_queue(queue: str, profile: str) -> str:
    """The RQ queue that the workers of ``queue`` with the function set ``profile`` listen to."""
    return f"{queue}.rqdag-{profile}"


def served_queue(rq_queue: str) -> str:
    """The queue a capability queue serves (``default`` for ``default.rqdag-<profile>``)."""
    head, sep, _ = rq_queue.rpartition(".rqdag-")
    return head if sep else rq_queue


def coordinator_wake(owner: str) -> str:
    """Stream a coordinator appends to when it hands a run to one of its loops: it wakes them
    from their blocking read (a few entries, expiring soon after the coordinator stops)."""
    return f"{PREFIX}:coordinator:{owner}:wake"


# A driver loop's inbox: a stream the workers' finish scripts (and the operators' writes)
# append a run's events key to, so that the loop reads only the runs with news. Named in
# the run's meta (field ``inbox``) by the lease the loop took; the scripts write to a name
# starting with INBOX_PREFIX only, and only while the loop keeps the stream alive.
INBOX_PREFIX = f"{PREFIX}:coordinator:"
INBOX_MAXLEN = 100_000  # MAXLEN ~ of each append (the literal in the Lua scripts: a test holds them equal)


def coordinator_inbox(owner: str, loop: int) -> str:
    """Stream of the events keys of the runs that driver loop ``loop`` of coordinator ``owner``
    drives and that have news (expires soon after the coordinator stops)."""
    return f"{INBOX_PREFIX}{owner}:inbox:{loop}"


def job_id(run_id: str, task: str, attempt: int) -> str:
    """The RQ job id of one attempt: readable, unique, and within ``[A-Za-z0-9_-]+``."""
    digest = hashlib.sha1(f"{run_id}\x00{task}".encode(), usedforsecurity=False).hexdigest()[:12]
    readable = _JOB_UNSAFE.sub("_", task)[:40]
    return f"rqdag_{readable}_{digest}_a{attempt}"
