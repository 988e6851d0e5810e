"""The params of each epoch of a run: a resume may run the next epoch with new ones.

The meta field ``params`` holds the current epoch's (what workers read);
``epoch_params`` records every epoch's, from the first resume on. Epochs before
it ran with the params the run had then, which a resume had not changed yet.
"""

from __future__ import annotations

from typing import Any

from rqdag.errors import DecodeError
from rqdag.shared.model.codec import loads


def parse_epoch_params(raw: bytes | str, *, what: str) -> dict[int, dict[str, Any]]:
    """The field ``epoch_params``: epoch number (a JSON key) to the params it ran with."""
    where = f"{what} field 'epoch_params'"
    body = loads(raw, what=where)
    if not isinstance(body, dict):
        raise DecodeError(f"{where} must be a JSON object")
    out: dict[int, dict[str, Any]] = {}
    for key, value in body.items():
        if not key.isdigit() or not isinstance(value, dict):
            raise DecodeError(f"{where}: entry {key!r} is not an epoch number with a params object")
        out[int(key)] = value
    return out


def with_next_epoch(
    recorded: dict[int, dict[str, Any]], epoch: int, current: dict[str, Any], new: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The record after a resume opens epoch ``epoch + 1`` with ``new`` params (JSON-ready).

    Epochs 1 to ``epoch`` not recorded yet ran with ``current``: params changed
    only by a resume, which records them.
    """
    out = {str(e): recorded.get(e, current) for e in range(1, epoch + 1)}
    out[str(epoch + 1)] = new
    return out
