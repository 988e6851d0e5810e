"""Who drives a run, and why nobody does: its lease holder, and a coordinator's recorded refusal.

A coordinator that Redis refuses a command for want of a permission cannot
drive the run it was on. It records why in the run's meta
(``RunStore.note_refusal``, when it may still write there); ``status`` and ``watch``
show that reason beside who holds the run's lease (:func:`read_driver`). When
nothing could be recorded, they still show that no coordinator holds the lease.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from redis.exceptions import NoPermissionError

from rqdag.shared.store.keys import RunKeys

REFUSAL_FIELD = "coordinator_problem"  # in a run's meta


@dataclass(frozen=True)
class Driver:
    """The coordinator that holds a run's lease (None: none does), and a recorded refusal."""

    owner: str | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """JSON form: ``{"lease_owner": ..., "problem": ...}``."""
        return {"lease_owner": self.owner, "problem": self.problem}


def read_driver(client: redis.Redis, run_id: str) -> Driver:
    """The run's lease holder and recorded refusal (one round trip)."""
    keys = RunKeys(run_id)
    with client.pipeline(transaction=False) as pipe:
        pipe.get(keys.lease)
        pipe.hget(keys.meta, REFUSAL_FIELD)
        lease, problem = pipe.execute()
    owner = (_text(lease).rpartition("|")[0] or _text(lease)) if lease else None
    return Driver(owner=owner, problem=_text(problem) if problem else None)


def is_refusal(exc: BaseException) -> bool:
    """True for Redis refusing a command, or a script's command, for want of a permission."""
    return isinstance(exc, NoPermissionError) or (
        isinstance(exc, redis.ResponseError) and "user executing the script can't" in str(exc)
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
