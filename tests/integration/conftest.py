"""Fixtures of the integration tests (real redis-server, real rqdag processes)."""

from tests.integration.procs import procs

__all__ = ["procs"]
