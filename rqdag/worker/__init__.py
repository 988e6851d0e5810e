"""The worker side: RQ workers that run rqdag task jobs (``rqdag worker``).

Never imports :mod:`rqdag.coordinator`: the two meet only in Redis.
"""

from rqdag.worker.job import run_task
from rqdag.worker.registry import build_registry
from rqdag.worker.start import start_worker

__all__ = ["build_registry", "run_task", "start_worker"]
