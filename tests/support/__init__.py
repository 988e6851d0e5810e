"""Helpers every test folder shares: real redis-servers, real rqdag processes, runs written by hand.

- :mod:`tests.support.redis`: private redis-servers (skipped locally, failed in CI when none starts).
- :mod:`tests.support.processes`: ``python -m rqdag ...`` children with their output in log files.
- :mod:`tests.support.wait`: polling with a deadline.
- :mod:`tests.support.ledger`: the JSON-lines file test tasks append to.
- :mod:`tests.support.runs`: a run's keys written as the coordinator writes them; waiting on a run.
- :mod:`tests.support.workers`: burst workers on the worker tests' task module.
- :mod:`tests.support.cli`: the CLI in-process, in pipes and on a pseudo-terminal.

The fixtures built on them live in ``tests/conftest.py`` (and ``tests/integration/conftest.py``).
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
"""The checkout's root: the working folder of child processes, and what they import rqdag from."""
