"""RunStore is the only Python code that writes a run's keys (the Lua scripts are the others).

The check reads every module of rqdag/ as Python syntax and looks for a Redis
write command (``hset``, ``xadd``, ``delete``...) whose arguments name a run
key: an attribute of a RunKeys (``rk.meta``, ``self._keys.dispatch``,
``RunKeys(r).lease``, ``rk.all()``), a lease's ``key``, the run indexes
(``keys.RUNS``, ``ACTIVE_RUNS``), an ``rqdag:`` string, or a name or attribute
the same module assigned from one of those. Multi-line calls and pipelines are
caught alike.
"""

from __future__ import annotations

import ast
from pathlib import Path

import rqdag
from rqdag.shared.store.keys import RunKeys

PACKAGE = Path(rqdag.__file__).parent
WRITER = PACKAGE / "shared" / "store" / "runs.py"
# RunStore inherits its retention writes (expiry, prune, index cleaning) from RetentionMixin.
RETENTION = PACKAGE / "shared" / "store" / "retention.py"
# ... its writes of mapped tasks' children from ExpansionMixin.
EXPANSIONS = PACKAGE / "shared" / "store" / "expansions.py"
# ... and a resume's, a resolution's, a signal's and an audit entry's writes from OperatorWritesMixin.
OPERATOR_WRITES = PACKAGE / "shared" / "store" / "operator_writes.py"
WRITERS = (WRITER, RETENTION, EXPANSIONS, OPERATOR_WRITES)

WRITE_COMMANDS = frozenset(
    {
        *("append", "copy", "decr", "decrby", "delete", "execute_command", "expire", "expireat"),
        *("getdel", "getex", "getset", "hdel", "hincrby", "hincrbyfloat", "hmset", "hset", "hsetnx"),
        *("incr", "incrby", "incrbyfloat", "linsert", "lmove", "lpop", "lpush", "lrem", "lset"),
        *("ltrim", "mset", "msetnx", "persist", "pexpire", "pexpireat", "psetex", "rename"),
        *("renamenx", "restore", "rpop", "rpoplpush", "rpush", "sadd", "set", "setex", "setnx"),
        *("smove", "spop", "srem", "unlink", "xack", "xadd", "xautoclaim", "xclaim", "xdel"),
        *("xgroup_create", "xtrim", "zadd", "zincrby", "zpopmax", "zpopmin", "zrem"),
        *("zremrangebyrank", "zremrangebyscore"),
    }
)
RUN_KEY_ATTRIBUTES = (frozenset(RunKeys.__slots__) - {"run_id"}) | {"all"}
RUN_INDEXES = frozenset({"RUNS", "ACTIVE_RUNS"})


def _is_run_key(node: ast.AST, tainted: set[str]) -> bool:
    """True if this one node (not its children) names a run key."""
    if isinstance(node, ast.Attribute):
        lease_key = node.attr == "key" and "lease" in ast.unparse(node.value).lower()
        return node.attr in RUN_KEY_ATTRIBUTES | RUN_INDEXES or lease_key or ast.unparse(node) in tainted
    if isinstance(node, ast.Name):
        return node.id in RUN_INDEXES or node.id in tainted
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Name) and node.func.id == "RunKeys"
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("rqdag:")


def _names_a_run_key(node: ast.AST, tainted: set[str]) -> bool:
    return any(_is_run_key(sub, tainted) for sub in ast.walk(node))


def _tainted_names(tree: ast.AST) -> set[str]:
    """Names (``key``, ``self._events``) this module assigns from a run-key expression."""
    tainted: set[str] = set()
    for _ in range(3):  # follow short chains: rk = RunKeys(r); key = rk.meta
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if _names_a_run_key(node.value, tainted):
                    tainted.update(ast.unparse(t) for t in targets)
    return tainted


def run_key_writes(source: str, filename: str = "<source>") -> list[str]:
    """``file:line: call`` for each write command on a run key in ``source``."""
    tree = ast.parse(source, filename)
    tainted = _tainted_names(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in WRITE_COMMANDS or not node.args:
            continue
        if any(_names_a_run_key(arg, tainted) for arg in node.args):
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node)[:120]}")
    return found


def test_no_module_but_the_run_store_writes_a_run_key() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path not in WRITERS:
            found += run_key_writes(path.read_text("utf-8"), str(path.relative_to(PACKAGE.parent)))
    assert found == [], "write a run's keys through RunStore (shared/store/runs.py):\n" + "\n".join(found)


def test_the_check_sees_the_run_stores_own_writes() -> None:
    # If the check found nothing in the modules that do write, it would prove nothing.
    found = [line for path in WRITERS for line in run_key_writes(path.read_text("utf-8"))]
    assert len(found) >= 10, found
    assert len(run_key_writes(WRITER.read_text("utf-8"))) >= 10
    for command in ("hset", "hdel", "xadd", "delete", "sadd", "srem", "zadd", "set("):
        assert any(f".{command}" in line for line in found), command


BAD = {
    "pipeline write": "pipe.hset(rk.meta, 'error', 'x')",
    "spread over lines": "pipe.xadd(\n    rk.events,\n    {'kind': 'resume'},\n)",
    "through self": "self._client.hset(self._keys.meta, 'error', str(exc))",
    "a fresh RunKeys": "client.connection.delete(RunKeys(handle.run_id).lease)",
    "every key": "pipe.delete(*rk.all())",
    "the run index": "client.sadd(keys.ACTIVE_RUNS, run_id)",
    "the run list": "pipe.zadd(RUNS, {run_id: now})",
    "the lease": "self._client.delete(self._lease.key)",
    "a key string": "client.set(f'rqdag:run:{{{run_id}}}:def', body)",
    "via a local name": "rk = keys.RunKeys(run_id)\nkey = rk.results\npipe.hdel(key, 'a')",
    "via an attribute": "self._events = RunKeys(run_id).events\nself._client.xadd(self._events, {})",
    "a raw command": "client.execute_command('HSET', rk.meta, 'a', 1)",
}

GOOD = {
    "a read": "pipe.hget(rk.meta, 'cancel')",
    "an event flag": "stop.set()",
    "a context variable": "env.current.set(spec.run_id, spec.task, spec.token)",
    "an RQ key": "worker.connection.delete(worker.key)",
    "a Lua step": "scripts.finish_task(keys=[rk.lease, rk.results], args=[token])",
}


def test_the_check_catches_each_way_of_writing_a_run_key() -> None:
    missed = [name for name, source in BAD.items() if not run_key_writes(source)]
    assert missed == []


def test_the_check_leaves_reads_and_other_keys_alone() -> None:
    flagged = {name: run_key_writes(source) for name, source in GOOD.items()}
    assert {name: hits for name, hits in flagged.items() if hits} == {}
