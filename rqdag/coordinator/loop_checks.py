"""The watchdog checks of a driver loop's runs, on dispatch hashes read many in one round trip.

Most of a loop's timed steps are a run's watchdog check with nothing found: a
run whose attempts wait in a long queue is checked every few seconds all the
same (for garbage over an entry, a job its worker took and died with). A loop
reads the dispatch hashes of every run due for that check alone in one
pipeline per CHECK_CHUNK runs, checks each, and steps only the runs whose
check found lost attempts.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

from rqdag.coordinator.driver import RunDriver

CHECK_CHUNK = 500  # dispatch hashes read in one pipeline


def check_runs(client: redis.Redis, drivers: Sequence[RunDriver]) -> dict[str, bool | Exception]:
    """Each run's check: run id -> True (it found something, or the read failed: step the run,
    which meets the error as alone), False (nothing found), or the exception its check raised."""
    out: dict[str, bool | Exception] = {}
    for start in range(0, len(drivers), CHECK_CHUNK):
        chunk = drivers[start : start + CHECK_CHUNK]
        try:
            with client.pipeline(transaction=False) as pipe:
                for driver in chunk:
                    pipe.hgetall(driver.dispatcher.dispatch_key)
                hashes = pipe.execute()
        except redis.RedisError:
            out.update((driver.run_id, True) for driver in chunk)
            continue
        for driver, dispatch in zip(chunk, hashes, strict=True):
            try:
                out[driver.run_id] = driver.dispatcher.check(dispatch)
            except Exception as exc:
                out[driver.run_id] = exc
    return out
