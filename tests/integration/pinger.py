"""A client that PINGs Redis on a fixed schedule, in its own process, to see how long Redis is blocked.

``python -m tests.integration.pinger URL INTERVAL_MS`` prints ``ready`` and PINGs
until a line arrives on stdin; then it prints one JSON line: ``latencies_ms`` and
``busy`` (BUSY replies seen). A PING is due every INTERVAL_MS; its latency is
counted from when it was due, not from when it could be sent, so a Redis that
stalls for a second yields a second's worth of slow samples, not a single one.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import redis


def ping_until_told(url: str, interval_s: float, stop: threading.Event) -> dict[str, object]:
    """PING every ``interval_s`` until ``stop``; the latencies (ms) and the count of BUSY replies."""
    client = redis.Redis.from_url(url, socket_timeout=30)
    latencies: list[float] = []
    busy = 0
    due = time.perf_counter()
    while not stop.is_set():
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        try:
            client.ping()
        except redis.ResponseError as exc:
            if not str(exc).startswith("BUSY"):
                raise
            busy += 1
        latencies.append((time.perf_counter() - due) * 1000)
        due += interval_s
    client.close()
    return {"latencies_ms": latencies, "busy": busy}


def main(argv: list[str]) -> int:
    """Entry point (see the module docstring)."""
    url, interval_ms = argv
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    print("ready", flush=True)
    print(json.dumps(ping_until_told(url, float(interval_ms) / 1000, stop)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
