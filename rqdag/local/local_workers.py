"""Local worker processes for the embedded default (``rqdag run`` with no Redis given)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence

from rqdag.local.processes import death_signal_hook

STOP_GRACE_S = 10.0
# A task's grace on SIGTERM (then handed back), well inside the SIGKILL that follows STOP_GRACE_S
SHUTDOWN_GRACE_S = STOP_GRACE_S / 2


class LocalWorkers:
    """``count`` ``rqdag worker`` subprocesses that die with this process, even on SIGKILL.

    Stopped by :meth:`stop`, they finish their tasks (SIGTERM); left orphans by a
    parent that was killed, they are killed at once, without a word.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        count: int,
        tasks: Sequence[str],
        python_path: Sequence[str] = (),
        worker_class: str = "simple",
        log_level: str = "WARNING",
    ) -> None:
        self._url = redis_url
        self._count = count
        self._tasks = list(tasks)
        self._python_path = list(python_path)
        self._worker_class = worker_class
        self._log_level = log_level
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        """Spawn the workers."""
        env = dict(os.environ)
        paths = [*self._python_path, os.getcwd(), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        command = [
            sys.executable,
            "-m",
            "rqdag",
            "worker",
            "--redis",
            self._url,
            "--tasks",
            ",".join(self._tasks),
            "--worker-class",
            self._worker_class,
            "--shutdown-grace",
            str(SHUTDOWN_GRACE_S),
            "--log-level",
            self._log_level,
        ]
        for _ in range(self._count):
            self._procs.append(
                subprocess.Popen(
                    command,
                    env=env,
                    stdout=sys.stderr,  # keep stdout for the command's own output (--json)
                    # Orphans stop at once and quietly: the private Redis died with the parent, so
                    # nothing they could still do would be recorded (the next run hands their
                    # tasks out again), and a warm shutdown would only fill the terminal with
                    # connection errors.
                    preexec_fn=death_signal_hook(signal.SIGKILL),
                    start_new_session=True,
                )
            )

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM (finish the current task), then SIGKILL after ``grace_s``."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers."""
        return [p.pid for p in self._procs if p.poll() is None]
