"""Unit tests of the in-process engine: no Redis, no subprocesses."""
