"""rqdag: run workflows (DAGs of tasks) across many machines with Redis and RQ."""

from rqdag.client import Client, RunHandle
from rqdag.errors import RqdagError
from rqdag.runner import RqdagWarning, TaskRunner, TaskRunnerBuilder
from rqdag.shared.context import TaskContext
from rqdag.shared.graph import to_dot, to_mermaid
from rqdag.shared.model import Retry, Task, TaskMetrics, TaskResult, TaskStatus
from rqdag.shared.snapshot import load_snapshot, save_snapshot
from rqdag.shared.workflow import Workflow

__all__ = [
    "Client",
    "Retry",
    "RqdagError",
    "RqdagWarning",
    "RunHandle",
    "Task",
    "TaskContext",
    "TaskMetrics",
    "TaskResult",
    "TaskRunner",
    "TaskRunnerBuilder",
    "TaskStatus",
    "Workflow",
    "load_snapshot",
    "save_snapshot",
    "to_dot",
    "to_mermaid",
]
