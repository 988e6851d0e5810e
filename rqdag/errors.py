"""Every exception rqdag raises on purpose.

The tree::

    RqdagError
    ├── WorkflowDefinitionError      the graph or a task is wrong (before anything runs)
    │   └── ImportPathError          an import path does not resolve
    ├── SnapshotError                a snapshot (file or mapping) is not a valid snapshot
    ├── EncodeError                  a value cannot be encoded as JSON
    ├── DecodeError                  bytes read back (Redis, a file) are not what was written
    ├── RunNotFoundError             no run with that id
    ├── RunExistsError               a run with that id exists already
    ├── LeaseLostError               this coordinator no longer owns the run
    ├── TaskNotAllowedError          a worker was asked to run an unregistered function
    ├── RedisOutOfMemoryError        Redis is full (maxmemory): it refused what was asked
    └── EmbeddedRedisError           the private redis-server could not be started
"""

from __future__ import annotations


class RqdagError(Exception):
    """Root of every error rqdag raises on purpose."""


class WorkflowDefinitionError(RqdagError):
    """The workflow is invalid: duplicate or unknown names, a cycle, a bad field."""


class ImportPathError(WorkflowDefinitionError):
    """An import path such as ``"pkg.mod:func"`` does not resolve to a callable."""


class SnapshotError(RqdagError):
    """A snapshot is not valid JSON, not a snapshot, or has an unknown status."""


class EncodeError(RqdagError):
    """A value (usually a task's return value) cannot be encoded as JSON."""


class DecodeError(RqdagError):
    """Stored bytes could not be decoded; the message names where they came from."""


class RunNotFoundError(RqdagError):
    """No run with the given id exists in Redis."""


class RunExistsError(RqdagError):
    """A run with the given id exists already (submit with resume to continue it)."""


class LeaseLostError(RqdagError):
    """The coordinator lost the run's lease to another coordinator."""


class TaskNotAllowedError(RqdagError):
    """A job named a function that is not a registered task on this worker."""


class RedisOutOfMemoryError(RqdagError):
    """Redis refused a write because it is full (``maxmemory`` under ``noeviction``); nothing was written."""


class EmbeddedRedisError(RqdagError):
    """The private redis-server could not be found or started."""
