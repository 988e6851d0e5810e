"""A coordinator that starts on a run someone else left half done (section 4), in its own process.

``python -m bench.resume_child rqdag|floor URL RUN_ID QUEUE LEASE_TTL`` talks to
the bench over stdin/stdout:

1. imports everything, connects, prints ``ready``;
2. on ``go`` notes the wall-clock start and begins: ``rqdag`` runs
   :meth:`RunDriver.drive` (lease TTL ``LEASE_TTL`` seconds) in a thread;
   ``floor`` does the least any resuming coordinator must do (read the
   definition and the results hash, decode them, enqueue one job);
3. on ``stop`` (the bench has seen the first job in the RQ queue), or when the
   driver returns by itself, stops, and prints one JSON line: the start time,
   the resident memory before ``go`` and its peak since (KiB), and what
   ``drive()`` returned.

Peak memory: before ``go`` the child collects garbage, hands free heap back to
the system (glibc ``malloc_trim``) and resets the kernel's peak-RSS mark
(``/proc/self/clear_refs``), so the peak (``VmHWM``) minus the resident size at
that moment is what the run added. Where that is not possible it falls back to
``ru_maxrss``, which hides growth below the import-time peak.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import resource
import select
import sys
import threading
import time
from pathlib import Path
from typing import Any

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from bench.workloads import RAW_FUNC
from rqdag.coordinator.driver import RunDriver
from rqdag.shared.connect import connect
from rqdag.shared.model.codec import loads
from rqdag.shared.store.keys import RunKeys


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def reset_peak() -> int:
    """Start measuring the peak from now; returns the resident size now (KiB)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return _status_kib("VmRSS") or int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def peak_kib() -> int:
    """The peak resident size (KiB) since :func:`reset_peak`."""
    return _status_kib("VmHWM") or int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def floor(client: redis.Redis, run_id: str, queue: str) -> None:
    """Read and decode the run's definition and results, then enqueue one job."""
    keys = RunKeys(run_id)
    definition = loads(client.get(keys.definition) or b"{}", what="definition")
    results = {k: loads(v, what="result") for k, v in client.hgetall(keys.results).items()}
    job = Queue.prepare_data(RAW_FUNC, job_id=f"floor_{len(results)}_{len(definition)}", timeout=-1)
    Queue(queue, connection=client, serializer=JSONSerializer).enqueue_many([job])


def drive(client: redis.Redis, run_id: str, lease_ttl_s: float) -> str:
    """Drive the run until the bench says stop, or until ``drive()`` returns; what it returned."""
    stop = threading.Event()
    box: dict[str, Any] = {}
    driver = RunDriver(client, run_id, "bench-resume", stop=stop, lease_ttl_s=lease_ttl_s)

    def target() -> None:
        try:
            box["status"] = driver.drive()
        except Exception as exc:  # reported to the bench, which fails the measure
            box["status"] = f"error: {exc!r}"

    thread = threading.Thread(target=target, name="bench-resume-driver", daemon=True)
    thread.start()
    while thread.is_alive():
        if select.select([sys.stdin], [], [], 0.05)[0]:
            sys.stdin.readline()
            break
    stop.set()
    thread.join()
    return str(box.get("status"))


def main(argv: list[str]) -> int:
    """Entry point (see the module docstring)."""
    if len(argv) != 5 or argv[0] not in ("rqdag", "floor"):
        print("usage: python -m bench.resume_child rqdag|floor URL RUN_ID QUEUE LEASE_TTL", file=sys.stderr)
        return 2
    mode, url, run_id, queue, lease_ttl = argv
    client = connect(url)
    client.ping()
    base = reset_peak()
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.time()
    status = "floor"
    if mode == "rqdag":
        status = drive(client, run_id, float(lease_ttl))
    else:
        floor(client, run_id, queue)
        sys.stdin.readline()
    report = {"start": start, "base_kib": base, "peak_kib": peak_kib(), "status": status}
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
