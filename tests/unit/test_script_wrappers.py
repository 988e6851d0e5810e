"""Each Lua script has one typed wrapper, and the wrapper's KEYS and ARGV are the script's.

The scripts themselves run against a real Redis in the integration tests; here a
recording stand-in for redis-py's ``Script`` shows what a wrapper sends and how
it reads each answer, and the ``.lua`` headers are checked against the names
each script gives its KEYS and ARGV.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from importlib import resources
from typing import Any, get_type_hints

import pytest
import redis

from rqdag.errors import RqdagError
from rqdag.shared.model.task_logs import LogLine
from rqdag.shared.model.vocabulary import LogStream
from rqdag.shared.store.keys import RunKeys
from rqdag.shared.store.scripts import (
    EVENTS_MAXLEN,
    Acquired,
    Beat,
    DecidedResult,
    FinishJobs,
    FinishOutcome,
    LeaseRefusal,
    PruneOutcome,
    QueuedJob,
    RqStart,
    RqSuccess,
    RqWorker,
    Scripts,
    ScriptWrapper,
    Start,
    StartJobs,
    StartOutcome,
    TakeJobs,
    VoidOutcome,
    script_source,
)
from rqdag.shared.store.scripts.attempt import StartTask, StartTasks
from rqdag.shared.store.scripts.jobs import CALL_ARGS, CALL_KEYS, START_ARGS, START_KEYS

LUA_DIR = resources.files("rqdag.shared.store").joinpath("lua")
SCRIPT_NAMES = sorted(p.name.removesuffix(".lua") for p in LUA_DIR.iterdir() if p.name.endswith(".lua"))
WRAPPERS: dict[str, type[ScriptWrapper]] = get_type_hints(Scripts)
KEYS = RunKeys("r1")
LEASE = "coord-1|3"

# Named parameters of each wrapper (values sent as they are are checked at the ARGV of that name).
SAMPLES: dict[str, dict[str, Any]] = {
    "acquire_lease": {
        "owner": "coord-1",
        "ttl_ms": 10_000,
        "known": 2,
        "inbox": "rqdag:coordinator:c:inbox:0",
    },
    "renew_lease": {"lease": LEASE, "ttl_ms": 10_000},
    "release_lease": {"lease": LEASE},
    "set_run_status": {"lease": LEASE, "status": "running", "now": 1700000000.25},
    "record_results": {
        "lease": LEASE,
        "results": [DecidedResult("t1", b'{"status":"skipped"}', "skipped"), DecidedResult("t2", b"{}", "x")],
    },
    "void_attempt": {"lease": LEASE, "task": "t1", "token": "1-abc", "state": "running"},
    "start_task": {
        "task": "t1",
        "token": "1-abc",
        "worker": "w1",
        "claim": "c1",
        "now": 1700000000.25,
        "heartbeat_timeout_s": None,
        "depends_on": ["a", "b"],
    },
    "finish_task": {
        "task": "t1",
        "token": "1-abc",
        "result": b'{"status":"success"}',
        "status": "success",
        "final": True,
        "now": 1700000000.25,
        "inline": False,
    },
    "heartbeat": {"task": "t1", "token": "1-abc", "now": 1700000000.25},
    "hand_back": {"task": "t1", "token": "1-abc"},
    "prune_run": {"cutoff": 1700000000.25, "statuses": ["succeeded", "failed"]},
    "append_logs": {
        "lines": [
            LogLine("t1", 2, 1700000000.25, LogStream.LOG, "hello", "info", "app"),
            LogLine("t1", 2, 1700000000.5, LogStream.STDOUT, "world"),
        ],
        "run_lines": 100_000,
    },
    "hold_timer": {"lease": LEASE, "field": "1:cool_down", "seconds": 3600.0},
    "notify_driver": {},
    "dispatch_jobs": {
        "lease": LEASE,
        "entries": {"t1": b'{"attempt":1}', "t2": b'{"attempt":1}'},
        "jobs": [QueuedJob("rqdag_r1_t1_a1", "rq:job:rqdag_r1_t1_a1", "rq:queue:default", {"x": "y"})],
        "queues_key": "rq:queues",
    },
}

# Scripts of a batch of calls or on RQ's keys (their own tests below).
BATCHED = {"finish_jobs", "renew_leases", "start_jobs", "start_tasks", "take_jobs"}

# A reply each script can give, for the calls that only look at what is sent.
SOME_REPLY: dict[str, Any] = {
    "acquire_lease": [3, 1, b"coord-0"],
    "renew_lease": 1,
    "release_lease": 1,
    "set_run_status": 1,
    "record_results": 2,
    "void_attempt": 1,
    "start_task": [b"ok", b"{}", None, None],
    "finish_task": b"ok",
    "heartbeat": [b"ok", b""],
    "hand_back": 1,
    "prune_run": 1,
    "append_logs": 2,
    "hold_timer": [b"1700003600.250000", b"1700000000.250000"],
    "dispatch_jobs": 1,
    "notify_driver": 0,
}


def call(name: str, script: Recording, **params: Any) -> Any:
    """Run the wrapper of script ``name`` on the stand-in ``script``."""
    wrapper: Any = WRAPPERS[name](script)  # type: ignore[arg-type]
    return wrapper(KEYS, **params)


class Recording:
    """Stands for redis-py's registered ``Script``: records each call, answers ``reply``."""

    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.calls: list[tuple[list[Any], list[Any]]] = []

    def __call__(self, keys: Any, args: Any, client: Any = None) -> Any:
        self.calls.append((list(keys), list(args)))
        return self.reply


@dataclass(frozen=True)
class Header:
    """What a script's header and its naming lines say."""

    keys: list[str]  # the name of KEYS[1], KEYS[2], ...
    argv: list[str]  # the name of ARGV[1], ARGV[2], ...
    variadic_from: int | None  # n of an 'ARGV[n..]' line
    variadic_keys: bool  # a 'KEYS[n..]' line: more keys follow the named ones
    named: dict[str, str]  # local name -> 'KEYS[i]' / 'ARGV[i]' of the naming lines
    body: str  # the script after its naming lines


def header(name: str) -> Header:
    keys: list[str] = []
    argv: list[str] = []
    named: dict[str, str] = {}
    variadic_from = None
    variadic_keys = False
    body: list[str] = []
    for line in script_source(name).splitlines():
        if m := re.match(r"^-- (KEYS|ARGV)\[(\d+)\]\s+(\w+)\s", line):
            target = keys if m.group(1) == "KEYS" else argv
            assert int(m.group(2)) == len(target) + 1, f"{name}: {m.group(1)} numbered out of order"
            target.append(m.group(3))
        elif m := re.match(r"^-- ARGV\[(\d+)\.\.\]", line):
            variadic_from = int(m.group(1))
        elif m := re.match(r"^-- KEYS\[(\d+)\.\.\]", line):
            assert int(m.group(1)) == len(keys) + 1, f"{name}: KEYS[n..] does not follow the named keys"
            variadic_keys = True
        elif m := re.match(r"^local (\w+) = ((?:KEYS|ARGV)\[\d+\])", line):
            named[m.group(1)] = m.group(2)
        else:
            body.append(line)
    return Header(keys, argv, variadic_from, variadic_keys, named, "\n".join(body))


def test_every_lua_script_has_one_wrapper_and_every_wrapper_a_script() -> None:
    assert sorted(f.name for f in fields(Scripts)) == SCRIPT_NAMES
    for name, wrapper in WRAPPERS.items():
        assert wrapper.name == name
    assert set(SAMPLES) | BATCHED == set(SCRIPT_NAMES) == set(SOME_REPLY) | BATCHED


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_a_script_names_each_key_and_argument_once_at_its_top_and_then_uses_the_names(name: str) -> None:
    head = header(name)
    source = script_source(name)
    assert re.search(r"^-- Returns:", source, re.M), f"{name}: no 'Returns:' in its header"
    expected = {k: f"KEYS[{i}]" for i, k in enumerate(head.keys, 1)}
    expected |= {a: f"ARGV[{i}]" for i, a in enumerate(head.argv, 1)}
    assert head.named == expected, f"{name}: the naming lines differ from the header"
    if head.variadic_keys:  # the named keys by name, the rest by a computed index
        assert not re.search(r"KEYS\[\d", head.body), f"{name}: a key used by position"
    else:
        assert "KEYS[" not in head.body, f"{name}: a key used by position"
    assert not re.search(r"ARGV\[\d", head.body), f"{name}: an argument used by position"
    if head.variadic_from is not None:
        assert head.variadic_from == len(head.argv) + 1


@pytest.mark.parametrize("name", [n for n in SCRIPT_NAMES if n not in BATCHED])
def test_a_wrapper_sends_the_keys_and_arguments_in_the_order_its_script_names_them(name: str) -> None:
    head = header(name)
    script = Recording(SOME_REPLY[name])
    call(name, script, **SAMPLES[name])
    [(keys, args)] = script.calls
    run_keys = [getattr(KEYS, k.removesuffix("_key")) for k in head.keys]
    if head.variadic_keys:
        assert keys[: len(run_keys)] == run_keys
    else:
        assert keys == run_keys
    if head.variadic_from is None:
        assert len(args) == len(head.argv)
    for index, arg_name in enumerate(head.argv):
        value = SAMPLES[name].get(arg_name)
        if isinstance(value, str | bytes | int) and not isinstance(value, bool):
            assert args[index] == value, f"{name}: ARGV[{index + 1}] is not {arg_name}"
        if arg_name == "maxlen":
            assert args[index] == EVENTS_MAXLEN


def test_the_variadic_and_coded_arguments() -> None:
    start, record, finish = Recording(SOME_REPLY["start_task"]), Recording(2), Recording(b"ok")
    call("start_task", start, **SAMPLES["start_task"])
    call("record_results", record, **SAMPLES["record_results"])
    call("finish_task", finish, **SAMPLES["finish_task"])
    assert start.calls[0][1][3] == 1700000000.25  # worker_time: the worker's clock
    assert start.calls[0][1][5:] == ["", "c1", "a", "b"]  # no own heartbeat limit, claim, dependencies
    assert record.calls[0][1][2:] == ["t1", b'{"status":"skipped"}', "skipped", "t2", b"{}", "x"]
    assert finish.calls[0][1][4:] == ["1", 1700000000.25, EVENTS_MAXLEN, "0"]
    timed = Recording(SOME_REPLY["start_task"])
    call("start_task", timed, **{**SAMPLES["start_task"], "heartbeat_timeout_s": 7.5})
    assert timed.calls[0][1][5] == 7.5
    status = Recording(1)
    call("set_run_status", status, **SAMPLES["set_run_status"])
    assert status.calls[0][1][2] == "1700000000.25"
    appended = Recording(2)
    call("append_logs", appended, **SAMPLES["append_logs"])
    assert appended.calls[0][1][1:] == [
        *("t1", "2", "1700000000.25", "log", "info", "app", "hello"),
        *("t1", "2", "1700000000.5", "stdout", "", "", "world"),
    ]  # 7 values a line, in the order the script reads them


@pytest.mark.parametrize(
    ("name", "reply", "expected"),
    [
        ("acquire_lease", [7, 1, b"coord-0"], Acquired(7, True, "coord-0")),
        ("acquire_lease", [7, 1, None], Acquired(7, True, None)),
        ("acquire_lease", [7, 0, None], Acquired(7, False, None)),
        ("acquire_lease", [0], LeaseRefusal.HELD_ELSEWHERE),
        ("acquire_lease", [-1], LeaseRefusal.NO_RUN),
        ("renew_lease", 1, True),
        ("renew_lease", 0, False),
        ("release_lease", 1, True),
        ("release_lease", 0, False),
        ("set_run_status", 1, True),
        ("set_run_status", -1, False),
        ("record_results", 2, 2),
        ("record_results", 0, 0),
        ("record_results", -1, None),
        ("void_attempt", 1, VoidOutcome.VOIDED),
        ("void_attempt", 0, VoidOutcome.MOVED_ON),
        ("void_attempt", -1, VoidOutcome.LEASE_LOST),
        ("start_task", [b"ok", b'{"p":1}', b"r", None], Start(StartOutcome.OK, b'{"p":1}', (b"r", None))),
        (
            "start_task",
            [b"cancelled", b"by request"],
            Start(StartOutcome.CANCELLED, cancel_reason="by request"),
        ),
        ("start_task", [b"gone"], Start(StartOutcome.GONE)),
        ("start_task", [b"done"], Start(StartOutcome.DONE)),
        ("start_task", [b"stale"], Start(StartOutcome.STALE)),
        ("finish_task", b"ok", FinishOutcome.WRITTEN),
        ("finish_task", b"stale", FinishOutcome.STALE),
        ("heartbeat", [b"ok", b""], Beat(alive=True)),
        ("heartbeat", [b"ok", b"by request"], Beat(alive=True, cancel_reason="by request")),
        ("heartbeat", [b"stale"], Beat(alive=False)),
        ("hand_back", 1, True),
        ("hand_back", 0, False),
        ("prune_run", 1, PruneOutcome.DELETED),
        ("prune_run", 0, PruneOutcome.KEPT),
        ("prune_run", -1, PruneOutcome.GONE),
        ("append_logs", 2, 2),
        ("append_logs", -1, None),
        ("hold_timer", [b"1700003600.5", b"1700000000.25"], 3600.25),
        ("hold_timer", -1, None),
    ],
)
def test_a_wrapper_answers_its_scripts_reply_as_a_typed_value(name: str, reply: Any, expected: Any) -> None:
    answer = call(name, Recording(reply), **SAMPLES[name])
    assert answer == expected
    assert type(answer) is type(expected)


@pytest.mark.parametrize(("name", "reply"), [("start_task", [b"what"]), ("finish_task", b"what")])
def test_an_answer_no_script_gives_is_a_clear_error(name: str, reply: Any) -> None:
    with pytest.raises(RqdagError, match=f"unexpected answer .* from the {name} script"):
        call(name, Recording(reply), **SAMPLES[name])


def test_the_start_and_finish_words_are_the_scripts_own() -> None:
    for outcome in StartOutcome:
        assert f"'{outcome.value}'" in script_source("start_task")
    for finished in FinishOutcome:
        assert f"'{finished.value}'" in script_source("finish_task")


def test_a_wrapper_refuses_a_pipeline_whose_reply_it_could_not_read() -> None:
    pipe = redis.Redis().pipeline()  # never connects: nothing is sent
    with pytest.raises(TypeError, match="hand_back script answers at once"):
        call("hand_back", Recording(1), task="t1", token="1-abc", client=pipe)


RQ_PART = RqSuccess(
    job_key="rq:job:j1",
    job_results_key="rq:results:j1",
    finished_key="rq:finished:q",
    started_key="rq:wip:q",
    execution_key="rq:execution:j1:e1",
    job_executions_key="rq:executions:j1",
    dependents_key="rq:job:j1:dependents",
    dependencies_key="rq:job::j1:dependencies",
    job_id="j1",
    execution_id="e1",
    execution_member="j1:e1",
    started_at="2026-12-02T04:00:00.000000Z",
    ended_at="2026-12-02T04:00:01.000000Z",
    working_time=1.0,
    return_value="InN1Y2Nlc3Mi",
    execution_started_at=1700000000.0,
    execution_ended_at=1700000001.0,
    result_ttl=60,
    finished_score=1700000061.0,
)


def _positions(source: str, table: str, base: str) -> dict[str, int]:
    """Local name -> i of each ``local a, b = table[base + i], ...`` line of a batch script."""
    out: dict[str, int] = {}
    pattern = rf"^\s*local ([\w, ]+) = ({table}\[{base} \+ \d+\](?:, {table}\[{base} \+ \d+\])*)$"
    for m in re.finditer(pattern, source, re.M):
        names = [n.strip() for n in m.group(1).split(",")]
        places = [int(i) for i in re.findall(rf"{table}\[{base} \+ (\d+)\]", m.group(2))]
        out |= dict(zip(names, places, strict=True))
    return out


def test_the_batch_script_reads_each_call_in_the_order_and_stride_its_wrapper_sends() -> None:
    source = script_source("finish_jobs")
    strides = {n: int(v) for n, v in re.findall(r"^local (CALL_KEYS|CALL_ARGS) = (\d+)$", source, re.M)}
    assert strides == {"CALL_KEYS": CALL_KEYS, "CALL_ARGS": CALL_ARGS}
    run_keys = ["results_key", "dispatch_key", "events_key"]
    rq_keys = [f.name for f in fields(RqSuccess) if f.name.endswith("_key")]
    assert _positions(source, "keys", "k") == {n: i for i, n in enumerate(run_keys + rq_keys, 1)}
    run_args = ["task", "token", "result", "status", "final", "now", "inline"]
    rq_args = [f.name for f in fields(RqSuccess) if not f.name.endswith("_key")]
    expected = {n: i for i, n in enumerate(run_args, 1)} | {n: i for i, n in enumerate(rq_args, 9)}
    assert _positions(source, "args", "a") == expected
    assert "args[a + 8] == '1'" in source  # the rq flag
    assert len(run_keys + rq_keys) == CALL_KEYS and len(run_args) + 1 + len(rq_args) == CALL_ARGS


def test_the_batch_wrapper_sends_shared_then_per_call_keys_and_arguments() -> None:
    worker = RqWorker("rq:worker:w", "rq:worker:w:executions", "w", "finished", "1", "started", "busy")
    params: dict[str, Any] = {"token": "1-abc", "result": b"{}", "status": "success", "now": 2.5}
    calls = [
        FinishJobs.request(KEYS, task="t1", final=True, inline=False, rq=RQ_PART, **params),
        FinishJobs.request(RunKeys("r2"), task="t2", final=False, inline=True, rq=None, **params),
    ]
    script = Recording([b"ok", b"stale"])
    answers = FinishJobs(script)(calls, worker=worker)  # type: ignore[arg-type]
    assert answers == [FinishOutcome.WRITTEN, FinishOutcome.STALE]
    [(keys, args)] = script.calls
    assert keys[:2] == ["rq:worker:w", "rq:worker:w:executions"]
    assert args[:4] == [EVENTS_MAXLEN, "w", "finished", "1"]
    first, second = keys[2 : 2 + CALL_KEYS], keys[2 + CALL_KEYS :]
    assert first == [KEYS.results, KEYS.dispatch, KEYS.events, *RQ_PART.keys()]
    r2 = RunKeys("r2")
    assert second == [r2.results, r2.dispatch, r2.events, *[r2.results] * 8], "keys the user may touch"
    one, two = args[4 : 4 + CALL_ARGS], args[4 + CALL_ARGS :]
    assert one == ["t1", "1-abc", b"{}", "success", "1", 2.5, "0", "1", *RQ_PART.args()]
    assert two[:8] == ["t2", "1-abc", b"{}", "success", "0", 2.5, "1", "0"] and len(two) == CALL_ARGS
    with pytest.raises(RqdagError, match="unexpected answer"):
        FinishJobs(Recording([b"ok"]))(calls, worker=worker)  # type: ignore[arg-type]


def test_the_rq_start_batch_reads_each_job_in_the_order_and_stride_its_wrapper_sends() -> None:
    source = script_source("start_jobs")
    strides = {n: int(v) for n, v in re.findall(r"^local (CALL_KEYS|CALL_ARGS) = (\d+)$", source, re.M)}
    assert strides == {"CALL_KEYS": START_KEYS, "CALL_ARGS": START_ARGS}
    names = [f.name for f in fields(RqStart)]
    key_names, arg_names = (
        [n for n in names if n.endswith("_key")],
        [n for n in names if not n.endswith("_key")],
    )
    assert _positions(source, "keys", "k") == {n: i for i, n in enumerate(key_names, 1)}
    assert _positions(source, "args", "a") == {n: i for i, n in enumerate(arg_names, 1)}
    worker = RqWorker("rq:worker:w", "rq:worker:w:executions", "w", "finished", "1", "started", "busy")
    one = RqStart("rq:job:j1", "rq:execution:j1:e1", "rq:executions:j1", "j1", "e1", "j1:e1", 420, 10.0, 70.0)
    script = Recording(1)
    started = StartJobs(script)(  # type: ignore[arg-type]
        [one], worker=worker, intermediate_key="i", started_key="s", now=1.5, now_text="t", worker_ttl=420
    )
    assert started == 1
    [(keys, args)] = script.calls
    assert keys == ["rq:worker:w", "rq:worker:w:executions", "i", "s", *(getattr(one, n) for n in key_names)]
    assert args == ["w", "1.5", "t", "busy", "started", 420, "j1", "e1", "j1:e1", 420, "10.0", "70.0"]


def test_the_take_script_moves_from_the_queue_to_its_intermediate_list_and_answers_the_ids() -> None:
    head = header("take_jobs")
    assert head.keys == ["queue_key", "intermediate_key"] and head.argv == ["count"]
    script = Recording([b"j1", b"j2"])
    taken = TakeJobs(script)(queue_key="rq:queue:q", intermediate_key="rq:queue:q:intermediate", count=8)  # type: ignore[arg-type]
    assert taken == ["j1", "j2"]
    assert script.calls == [(["rq:queue:q", "rq:queue:q:intermediate"], [8])]
    with pytest.raises(RqdagError, match="unexpected answer"):
        TakeJobs(Recording(0))(queue_key="a", intermediate_key="b", count=1)  # type: ignore[arg-type]


def test_the_start_batch_sends_each_call_of_start_task_in_its_own_order_and_answers_each() -> None:
    head = header("start_tasks")
    assert head.argv == ["worker", "maxlen"] and head.keys == []
    source = script_source("start_tasks")
    assert _positions(source, "keys", "k") == {
        "meta_key": 1,
        "results_key": 2,
        "dispatch_key": 3,
        "events_key": 4,
    }
    assert _positions(source, "args", "a") == {
        "task": 1,
        "token": 2,
        "worker_time": 3,
        "heartbeat_timeout": 4,
        "claim": 5,
    }
    assert "tonumber(args[a + 6])" in source and "args[a + 6 + i]" in source  # the dependencies
    params: dict[str, Any] = {"worker": "w1", "now": 1.5, "heartbeat_timeout_s": None}
    calls = [
        StartTask.request(KEYS, task="t1", token="1-a", claim="c1", depends_on=["a", "b"], **params),
        StartTask.request(RunKeys("r2"), task="t2", token="1-b", claim="c2", depends_on=[], **params),
    ]
    script = Recording([[b"ok", b"{}", b"ra", None], [b"stale"]])
    answers = StartTasks(script)(calls)  # type: ignore[arg-type]
    assert answers == [Start(StartOutcome.OK, b"{}", (b"ra", None)), Start(StartOutcome.STALE)]
    [(keys, args)] = script.calls
    r2 = RunKeys("r2")
    assert keys == [
        KEYS.meta,
        KEYS.results,
        KEYS.dispatch,
        KEYS.events,
        r2.meta,
        r2.results,
        r2.dispatch,
        r2.events,
    ]
    assert args == [
        "w1",
        EVENTS_MAXLEN,
        "t1",
        "1-a",
        1.5,
        "",
        "c1",
        2,
        "a",
        "b",
        "t2",
        "1-b",
        1.5,
        "",
        "c2",
        0,
    ]
    with pytest.raises(RqdagError, match="unexpected answer"):
        StartTasks(Recording([[b"ok", b"{}"]]))(calls)  # type: ignore[arg-type]
