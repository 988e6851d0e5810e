"""A worker whose Redis round trips and commands are counted (section 5).

``python -m bench.counted COUNT_FILE rqdag|raw URL QUEUE NAME`` installs the
process-wide counter of :mod:`bench.counting`, then runs the same worker as the
other sections: rqdag's :func:`~rqdag.worker.start_worker` (simple worker class,
``bench.tasks``), or :func:`bench.rawworker.run`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench import counting, rawworker
from rqdag.worker import start_worker


def main(argv: list[str]) -> int:
    """Entry point."""
    if len(argv) != 5 or argv[1] not in ("rqdag", "raw"):
        print("usage: python -m bench.counted COUNT_FILE rqdag|raw URL QUEUE NAME", file=sys.stderr)
        return 2
    count_file, kind, url, queue, name = argv
    counting.install(counting.Tally(Path(count_file)))
    if kind == "raw":
        rawworker.run(url, queue, name)
    else:
        start_worker(
            url,
            tasks=["bench.tasks"],
            queues=[queue],
            worker_class="simple",
            name=name,
            log_level=rawworker.LOG_LEVEL,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
