"""The metrics facade: no-op until served; labels by workflow and task (a mapped child as its task)."""

from __future__ import annotations

import prometheus_client

from rqdag.shared import metrics
from rqdag.shared.model.result import TaskResult


def test_every_call_is_a_no_op_until_metrics_are_served() -> None:
    assert metrics._recorder is None
    metrics.task_started("wf", "t", 1.0)
    metrics.task_finished("wf", "t", TaskResult.failure("x"), refused=True)
    metrics.results_decided("wf", {"t": "skipped"})
    metrics.attempts_ended_here("wf", [("t", "lost")])
    metrics.slot_busy(1)
    metrics.run_status("r", "wf", "running", finished=False)
    metrics.run_released("r")
    metrics.lease_acquired(taken_over=True)
    metrics.redis_error("ConnectionError")
    metrics.redis_reconnected(True)


def test_a_mapped_child_counts_as_its_task() -> None:
    assert metrics.base_task("resize[photo-1.jpg]") == "resize"
    assert metrics.base_task("plain") == "plain"


def test_runs_by_status_follow_each_run_driven_here() -> None:
    recorder = metrics.Recorder(prometheus_client)

    def runs(status: str) -> float | None:
        return recorder.registry.get_sample_value("rqdag_runs", {"workflow": "wf", "status": status})

    recorder.run_status("r1", "wf", "running", finished=False)
    recorder.run_status("r2", "wf", "running", finished=False)
    recorder.run_status("r1", "wf", "blocked", finished=False)
    assert (runs("running"), runs("blocked")) == (1, 1)
    recorder.run_status("r1", "wf", "failed", finished=True)
    recorder.run_released("r1")  # the driver's exit after the end: nothing left to drop
    recorder.run_released("r2")  # went on elsewhere
    assert (runs("running"), runs("blocked")) == (0, 0)
    finished = recorder.registry.get_sample_value(
        "rqdag_runs_finished_total", {"workflow": "wf", "status": "failed"}
    )
    assert finished == 1
