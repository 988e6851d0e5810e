"""The machine a run of the suite ran on, for the results file."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from bench.config import REPO
from bench.server import redis_server_version


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo`` on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def version(package: str) -> str:
    """An installed distribution's version, or ``-``."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def commit() -> str:
    """The checkout's commit, marked when ``rqdag/`` has local changes; ``-`` outside git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "rqdag")
    except (OSError, subprocess.SubprocessError):
        return "-"
    return f"{head} (with local changes in rqdag/)" if dirty else head


def load_average() -> str:
    """The 1/5/15-minute load averages, as ``a / b / c``."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "-"


@dataclass(frozen=True)
class Machine:
    """What the results depend on besides the code."""

    cpu: str
    cores: int
    system: str
    python: str
    redis_server: str
    rq: str
    redis_py: str
    hiredis: str
    orjson: str
    rqdag: str
    commit: str
    started: str
    load_before: str

    @classmethod
    def collect(cls) -> Machine:
        """Read it all now."""
        return cls(
            cpu=cpu_model(),
            cores=os.cpu_count() or 0,
            system=f"{platform.system()} {platform.release()}",
            python=platform.python_version(),
            redis_server=redis_server_version(),
            rq=version("rq"),
            redis_py=version("redis"),
            hiredis=version("hiredis"),
            orjson=version("orjson"),
            rqdag=version("rqdag"),
            commit=commit(),
            started=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            load_before=load_average(),
        )
