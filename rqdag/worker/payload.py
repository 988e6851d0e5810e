"""What a task job reads from Redis and writes back: the run's params, the dependencies'
data (eager, or read when the task first reads it), and its own result, capped in size."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from rqdag.errors import DecodeError, EncodeError
from rqdag.shared.model.codec import decode_result, encode_result, loads
from rqdag.shared.model.job import TaskJob
from rqdag.shared.model.result import TaskResult
from rqdag.shared.model.vocabulary import TaskStatus
from rqdag.shared.store.keys import RunKeys
from rqdag.worker.environment import WorkerEnvironment
from rqdag.worker.inputs import ABSENT, eager_dependencies

log = logging.getLogger("rqdag.worker")


def encode_capped(spec: TaskJob, result: TaskResult, limit: int) -> tuple[TaskResult, bytes]:
    """``result`` and its JSON, or a failure saying why it cannot be stored (not JSON, too large)."""
    what = _what(spec)
    try:
        encoded = encode_result(result, what=what)
    except EncodeError as exc:
        return _replaced_by_failure(spec, result, str(exc))
    if len(encoded) <= limit:
        return result, encoded
    return _replaced_by_failure(
        spec,
        result,
        f"task '{spec.task}': its result is {len(encoded)} bytes, over this worker's limit of {limit} "
        "bytes (max_result_bytes): store large data elsewhere and return a reference",
    )


def _replaced_by_failure(spec: TaskJob, result: TaskResult, message: str) -> tuple[TaskResult, bytes]:
    log.warning("run %r: %s", spec.run_id, message)
    failure = dataclasses.replace(result, status=TaskStatus.FAILURE, message=message, error=None, data=None)
    return failure, encode_result(failure, what=_what(spec))


def decode_params(spec: TaskJob, raw: bytes) -> Mapping[str, Any]:
    """The run's params (a JSON object); DecodeError naming the run and task otherwise."""
    what = f"run '{spec.run_id}', task '{spec.task}': the run's params"
    params = loads(raw, what=what)
    if not isinstance(params, dict):
        raise DecodeError(f"{what} must be a JSON object, got {type(params).__name__}")
    return params


def decode_inputs(spec: TaskJob, raw_deps: Sequence[bytes | None]) -> dict[str, Any]:
    """Each eager dependency that passes data on, to its data (``raw_deps``: their stored results)."""
    inputs: dict[str, Any] = {}
    for dep, raw in zip(eager_dependencies(spec), raw_deps, strict=False):
        value = _input_of(spec, dep, raw)
        if value is not ABSENT:
            inputs[dep] = value
    return inputs


def _input_of(spec: TaskJob, dep: str, raw: bytes | None) -> Any:
    """The data dependency ``dep`` passes on, or ABSENT."""
    if raw is None:
        return ABSENT
    what = f"run '{spec.run_id}', task '{spec.task}': stored result of dependency '{dep}'"
    result = decode_result(raw, what=what)
    if result.status == TaskStatus.SUCCESS or (
        result.status == TaskStatus.FAILURE and dep in spec.mapped_inputs
    ):  # a failed mapped task passes its successful children's data on (continue_on_error)
        return result.data
    return ABSENT


def read_input(env: WorkerEnvironment, spec: TaskJob, dep: str) -> Any:
    """A lazy dependency's data, read when the task first reads it (a child's source)."""
    raw: Any = env.connection.hget(RunKeys(spec.run_id).results, dep)
    return _input_of(spec, dep, raw)


def _what(spec: TaskJob) -> str:
    return f"run '{spec.run_id}': result of task '{spec.task}'"
