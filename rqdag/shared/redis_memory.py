"""A full Redis: ``maxmemory`` reached under ``noeviction``, so Redis refuses writes (reads go on).

Every long-running process rides it out the same way: it logs
:data:`OUT_OF_MEMORY` once per episode (:func:`memory_episode`), backs off and
goes on by itself once memory is freed. A one-shot command (``submit``) fails at
once with :class:`~rqdag.errors.RedisOutOfMemoryError`, having written nothing.
"""

from __future__ import annotations

import logging

import redis

from rqdag.shared.episodes import Episode

OUT_OF_MEMORY = "Redis is out of memory"
MEMORY_BACK = "Redis accepts writes again"
# what Redis says, whatever redis-py made of it (a script's error, a pipeline's annotated one)
_REFUSAL = "used memory > 'maxmemory'"


def is_out_of_memory(exc: BaseException) -> bool:
    """True when ``exc`` is Redis refusing a write because it is full."""
    if isinstance(exc, redis.OutOfMemoryError):
        return True
    return isinstance(exc, redis.ResponseError) and _REFUSAL in str(exc)


def memory_episode(logger: logging.Logger, where: str = "") -> Episode:
    """The episode of a full Redis as one process (or one part of it, ``where``) sees it."""
    return Episode(logger, f"{where}{OUT_OF_MEMORY}", f"{where}{MEMORY_BACK}")
