"""Limits that more than one side applies, so that they agree."""

from __future__ import annotations

MAX_RESULT_BYTES = 1 << 20
"""The default cap on one task result's JSON: a worker's ``--max-result-bytes``, and the
results a snapshot seeds into a new run (``rqdag snapshot import``, ``Client.submit``)."""
