"""The stored expansions of mapped tasks: which children a run's mapped tasks have.

Two hashes per run. ``children``: one field per chunk of an expansion's
children, ``MAPPED#ID#N`` -> ``{"map", "id", "start", "keys", "items"}`` (up to
:data:`ROWS_PER_CHUNK` children each); ``expansions``: mapped task -> ``{"id",
"count"}``, written last. An expansion is complete when its ``expansions`` entry
exists: the chunks are written first (a few per MULTI/EXEC, each fenced by the
lease, so no command grows with the run), then that entry. A coordinator that
dies in between left no entry: its successor expands again (from the same source
data) under a new id, and chunks of an id that no entry names are ignored.
Children are dispatched only after their expansion is complete, so a takeover
never finds a child in flight whose expansion it does not read back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import redis

from rqdag.errors import DecodeError, LeaseLostError
from rqdag.shared.model.codec import dumps, loads
from rqdag.shared.model.mapping import Expansion
from rqdag.shared.store import keys
from rqdag.shared.store.records import text

ROWS_PER_CHUNK = 1_000  # children per field of the children hash
CHUNKS_PER_WRITE = 10  # fields per fenced MULTI/EXEC
READ_COUNT = 10  # fields per HSCAN chunk (each holds up to ROWS_PER_CHUNK children)
RESULTS_PER_READ = 1_000  # results per HMGET


class ExpansionMixin:
    """RunStore's writes and reads of mapped tasks' children."""

    client: redis.Redis

    def write_expansion(self, run_id: str, lease_value: str, mapped: str, expansion: Expansion) -> None:
        """Store the children of ``mapped``, only while the lease is ``lease_value``.

        LeaseLostError if the lease is not (or stops being) ``lease_value`` before a write.
        """
        rk = keys.RunKeys(run_id)
        xid = uuid.uuid4().hex[:12]
        where = f"run '{run_id}': children of '{mapped}'"
        count = len(expansion.keys)
        fields: dict[str, bytes] = {}
        for n, start in enumerate(range(0, count, ROWS_PER_CHUNK)):
            end = start + ROWS_PER_CHUNK
            body = {
                "map": mapped,
                "id": xid,
                "start": start,
                "keys": expansion.keys[start:end],
                "items": expansion.items[start:end],
            }
            fields[f"{mapped}#{xid}#{n}"] = dumps(body, what=where)
            if len(fields) == CHUNKS_PER_WRITE:
                self._fenced_hset(rk, lease_value, rk.child_rows, fields)
                fields = {}
        if fields:
            self._fenced_hset(rk, lease_value, rk.child_rows, fields)
        marker = dumps({"id": xid, "count": count}, what=where)
        self._fenced_hset(rk, lease_value, rk.expansions, {mapped: marker})

    def _fenced_hset(self, rk: keys.RunKeys, lease_value: str, key: str, mapping: dict[str, bytes]) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(rk.lease)  # type: ignore[no-untyped-call]
                if text(pipe.get(rk.lease) or b"") != lease_value:
                    raise LeaseLostError(f"run '{rk.run_id}': lease lost before storing children")
                pipe.multi()
                pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
                pipe.execute()
            except redis.WatchError:
                raise LeaseLostError(f"run '{rk.run_id}': lease changed while storing children") from None

    def expansion_counts(self, run_id: str) -> dict[str, int]:
        """Mapped task -> how many children its complete expansion has (one small hash read)."""
        return {name: count for name, (_, count) in self._markers(run_id).items()}

    def _markers(self, run_id: str) -> dict[str, tuple[str, int]]:
        markers: dict[str, tuple[str, int]] = {}
        for raw_name, raw in self.client.hgetall(keys.RunKeys(run_id).expansions).items():
            name = text(raw_name)
            marker = loads(raw, what=f"run '{run_id}': expansion of '{name}'")
            if not isinstance(marker, dict) or not isinstance(marker.get("count"), int):
                raise DecodeError(f"run '{run_id}': expansion of '{name}' is not {{id, count}}")
            markers[name] = (str(marker.get("id")), marker["count"])
        return markers

    def read_expansions(self, run_id: str) -> dict[str, Expansion]:
        """Every complete expansion of the run, by mapped task, children in item order.

        Read in bounded chunks (HSCAN); DecodeError names a chunk that cannot be
        read or an expansion that lacks children.
        """
        markers = self._markers(run_id)
        if not markers:
            return {}
        found: dict[str, list[tuple[int, list[str], list[Any]]]] = {m: [] for m in markers}
        cursor = 0
        while True:
            reply: Any = self.client.hscan(keys.RunKeys(run_id).child_rows, cursor, count=READ_COUNT)
            cursor, chunk = reply
            for raw_name, raw in chunk.items():
                _place(run_id, text(raw_name), raw, markers, found)
            if cursor == 0:
                break
        return {
            mapped: _joined(run_id, mapped, found[mapped], count) for mapped, (_, count) in markers.items()
        }

    def read_result_values(self, run_id: str, names: Sequence[str]) -> list[bytes | None]:
        """The stored results of ``names`` (raw JSON, None where absent), in HMGET chunks."""
        rk = keys.RunKeys(run_id)
        out: list[bytes | None] = []
        for start in range(0, len(names), RESULTS_PER_READ):
            part = list(names[start : start + RESULTS_PER_READ])
            out.extend(self.client.hmget(rk.results, part))  # type: ignore[arg-type]
        return out


def _place(
    run_id: str,
    field: str,
    raw: bytes | str,
    markers: dict[str, tuple[str, int]],
    found: dict[str, list[tuple[int, list[str], list[Any]]]],
) -> None:
    """Keep one chunk if it belongs to a complete expansion (a stale expansion id is ignored)."""
    body = loads(raw, what=f"run '{run_id}': children chunk '{field}'")
    if not isinstance(body, dict):
        raise DecodeError(f"run '{run_id}': children chunk '{field}' is not an object")
    mapped, start, chunk_keys, items = body.get("map"), body.get("start"), body.get("keys"), body.get("items")
    marker = markers.get(mapped) if isinstance(mapped, str) else None
    if marker is None or marker[0] != body.get("id"):
        return
    if not isinstance(start, int) or not isinstance(chunk_keys, list) or not isinstance(items, list):
        raise DecodeError(f"run '{run_id}': children chunk '{field}' lacks start, keys or items")
    if len(chunk_keys) != len(items) or not all(isinstance(k, str) for k in chunk_keys):
        raise DecodeError(f"run '{run_id}': children chunk '{field}': keys and items do not match")
    found[mapped].append((start, chunk_keys, items))  # type: ignore[index]


def _joined(
    run_id: str, mapped: str, chunks: list[tuple[int, list[str], list[Any]]], count: int
) -> Expansion:
    chunks.sort(key=lambda c: c[0])
    all_keys: list[str] = []
    items: list[Any] = []
    for start, chunk_keys, chunk_items in chunks:
        if start != len(all_keys):
            break
        all_keys.extend(chunk_keys)
        items.extend(chunk_items)
    if len(all_keys) != count:
        raise DecodeError(
            f"run '{run_id}': the expansion of '{mapped}' holds {len(all_keys)} of its {count} children"
        )
    return Expansion(all_keys, items)
