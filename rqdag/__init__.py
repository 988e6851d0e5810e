"""rqdag: run workflows (DAGs of tasks) across many machines with Redis and RQ."""

from rqdag.client import Client, RunHandle
from rqdag.errors import RqdagError
from rqdag.runner import RqdagWarning, TaskRunner, TaskRunnerBuilder
from rqdag.shared.model.context import TaskContext
from rqdag.shared.model.graph import to_dot, to_mermaid
from rqdag.shared.model.result import TaskMetrics, TaskResult
from rqdag.shared.model.snapshot import load_snapshot, save_snapshot
from rqdag.shared.model.task import Retry, Task
from rqdag.shared.model.vocabulary import TaskStatus
from rqdag.shared.model.workflow import Workflow

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
