"""RQ's death penalty for rqdag jobs: RQ's job timeout off, the forking worker's monitor alarm on."""

from __future__ import annotations

from typing import Any

from rq.timeouts import HorseMonitorTimeoutException, JobTimeoutException, UnixSignalDeathPenalty


class TaskJobTimeoutOff(UnixSignalDeathPenalty):
    """RQ's death penalty with the job (and callback) timeout turned off.

    rqdag enforces each task's ``timeout_s`` inside the job. The forking
    worker's monitor uses this same class with HorseMonitorTimeoutException to
    wake up and keep RQ's heartbeats while its horse runs: that alarm stays on.
    """

    def __init__(
        self, timeout: Any, exception: type[BaseException] = JobTimeoutException, **kwargs: Any
    ) -> None:
        super().__init__(timeout, exception, **kwargs)  # type: ignore[no-untyped-call]
        self.for_horse_monitor = issubclass(exception, HorseMonitorTimeoutException)

    def setup_death_penalty(self) -> None:
        """Arm the alarm only for the horse monitor."""
        if self.for_horse_monitor:
            super().setup_death_penalty()  # type: ignore[no-untyped-call]

    def cancel_death_penalty(self) -> None:
        """Disarm the alarm only for the horse monitor."""
        if self.for_horse_monitor:
            super().cancel_death_penalty()  # type: ignore[no-untyped-call]
