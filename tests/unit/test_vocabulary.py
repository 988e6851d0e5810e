"""Every status, attempt state and event kind the Lua scripts spell is a member of its enum.

A small extractor reads each script (comments left out) and finds the words in
the places that hold one:

- ``'kind', X`` (an events stream entry, in an XADD or a fields table): an EventKind;
- ``x['state'] = X``, ``x['state'] == X``, ``x['state'] ~= X``: an AttemptState;
- ``x['status'] == X`` (a decoded result): a TaskStatus; ``"status":"..."`` inside a
  literal (a result's JSON text): a TaskStatus;
- ``'status', X`` in an HSET (the run's meta hash): a RunStatus; in an XADD: a
  TaskStatus or, for a ``run`` event, a RunStatus.

X is a literal, or a variable, whose words are the literals assigned to it, or an
``ARGV[i]``, whose words are the literals the script compares it with (the caller
sends the same words). Every other literal of a script must be a Redis word, a
field name or a script reply listed below: a word in a place these rules do not
know fails the test too, instead of passing unseen.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import orjson
import pytest

from rqdag.coordinator.events import EventBus, RunEvent
from rqdag.errors import RqdagError
from rqdag.shared.model import task as task_module
from rqdag.shared.model.vocabulary import (
    AttemptState,
    EventKind,
    RunEventKind,
    RunStatus,
    TaskStatus,
)
from rqdag.shared.store import scripts

LUA_DIR = Path(scripts.__file__).parent.parent / "lua"
LUA_FILES = sorted(LUA_DIR.glob("*.lua"))

STRING = r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\""
EXPR = rf"(?:{STRING}|[A-Za-z_]\w*(?:\[[^\]\n]*\])*)"
START = r"(?<![\w'\"\].])"  # an expression starts here, not inside a longer one

REDIS_WORDS = {"GET", "SET", "DEL", "EXISTS", "PEXPIRE", "TIME", "HGET", "HSET", "HDEL", "HGETALL"}
REDIS_WORDS |= {"HINCRBY", "XADD", "XREVRANGE", "MAXLEN", "PX", "COUNT", "~", "*", "+", "-"}
REDIS_WORDS |= {"HMGET", "UNLINK", "PTTL", "EXPIRE", "HINCRBYFLOAT", "ZADD", "ZREM", "SREM", "SADD", "RPUSH"}
REDIS_WORDS |= {"PERSIST", "LREM", "LMOVE", "LEFT", "RIGHT"}
FIELD_NAMES = {"fence", "driver", "cancel", "params", "status", "updated_at", "finished_at", "kind", "task"}
FIELD_NAMES |= {"inbox", "e"}  # a run's driver loop's inbox (meta), an inbox entry's events key
FIELD_NAMES |= {"token", "worker", "state", "result", "last_result", "started_at", "heartbeat_at"}
FIELD_NAMES |= {"worker_time", "heartbeat_timeout", '"in_doubt"', "claim", "retry_of"}
FIELD_NAMES |= {"attempt", "at", "stream", "level", "logger", "message"}  # a line of a run's logs
# RQ's own fields (finish_jobs: a job's hash, its result stream entry, the worker's counters);
# RQ's words for their values come from RQ's API, as arguments
FIELD_NAMES |= {"ended_at", "last_heartbeat", "type", "worker_name", "return_value", "execution_id"}
FIELD_NAMES |= {"execution_started_at", "execution_ended_at", "successful_job_count", "total_working_time"}
FIELD_NAMES |= {"id", "job_id", "created_at"}  # start_jobs: an execution record
SCRIPT_REPLIES = {"ok", "stale", "gone", "done", "cancelled"}
OTHER_LITERALS = {"", "0", "1", "|", "{}", "^(.*)|(%d+)$", "table"}  # flags, the lease's form, type()
OTHER_LITERALS |= {"meta", "rqdag:coordinator:"}  # a meta key named after an events key; INBOX_PREFIX
NOT_VOCABULARY = REDIS_WORDS | FIELD_NAMES | SCRIPT_REPLIES | OTHER_LITERALS

# Written from Python, not by a script: rqdag.shared.store.resolve, .resume and .runs.
KINDS_WRITTEN_IN_PYTHON = {
    EventKind.RESOLVED,
    EventKind.RESUME,
    EventKind.SIGNAL,
    EventKind.CHILD,
    EventKind.CANCEL,
}


@dataclass(frozen=True)
class Word:
    """One word a script spells where a member of ``vocabularies`` belongs."""

    script: str
    value: str
    where: str
    vocabularies: tuple[type[StrEnum], ...]

    def is_member(self) -> bool:
        return any(self.value in {m.value for m in v} for v in self.vocabularies)

    def __str__(self) -> str:
        names = " or ".join(v.__name__ for v in self.vocabularies)
        return f"{self.script}.lua: {self.value!r} (at {self.where!r}) is not a member of {names}"


@dataclass
class Found:
    """What the extractor found in one script."""

    words: list[Word] = field(default_factory=list)
    unclassified: list[str] = field(default_factory=list)

    def values(self, vocabulary: type[StrEnum]) -> set[str]:
        return {w.value for w in self.words if vocabulary in w.vocabularies}


def strip_comments(source: str) -> str:
    """``source`` without its ``--`` comments (a ``--`` inside a string stays)."""
    out: list[str] = []
    i, quote = 0, ""
    while i < len(source):
        ch = source[i]
        if quote:
            out.append(source[i : i + 2] if ch == "\\" else ch)
            i += 2 if ch == "\\" else 1
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
            out.append(ch)
            i += 1
        elif source.startswith("--", i):
            closing = "]]" if source.startswith("--[[", i) else "\n"
            end = source.find(closing, i)
            i = len(source) if end < 0 else end + (2 if closing == "]]" else 0)
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def literal(expr: str) -> str | None:
    """The text of a string literal, or None when ``expr`` is not one."""
    if len(expr) >= 2 and expr[0] == expr[-1] and expr[0] in "'\"":
        return expr[1:-1]
    return None


def calls(code: str) -> list[tuple[str, list[str]]]:
    """Every ``redis.call('CMD', arg, ...)``: the command and its arguments, split at top level."""
    out = []
    for match in re.finditer(r"redis\.call\(\s*'(\w+)'", code):
        depth, args, current, quote = 1, [], "", ""
        for ch in code[match.end() :]:
            if quote:
                quote = "" if ch == quote else quote
            elif ch in "'\"":
                quote = ch
            elif ch in "({":
                depth += 1
            elif ch in ")}":
                depth -= 1
                if depth == 0:
                    break
            elif ch == "," and depth == 1:
                args.append(current.strip())
                current = ""
                continue
            current += ch
        args.append(current.strip())
        out.append((match.group(1), [a for a in args if a]))
    return out


def tables(code: str) -> list[tuple[str, list[str]]]:
    """Table constructors that hold an event's fields (a ``'kind'`` among them), as XADD arguments."""
    out = []
    for match in re.finditer(r"\{([^{}]*)\}", code):
        args = [a.strip() for a in match.group(1).split(",")]
        if "'kind'" in args:
            out.append(("XADD", args))
    return out


class Extractor:
    """Finds the vocabulary words of one script (see the module docstring for the rules)."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.code = strip_comments(source)
        self.found = Found()
        self.classified: set[str] = set()

    def run(self) -> Found:
        code = self.code
        for m in re.finditer(rf"'kind'\s*,\s*({EXPR})", code):
            self.check(m.group(1), m.group(0), EventKind)
        self.indexed("state", AttemptState)
        self.indexed("status", TaskStatus)
        self.status_fields()
        self.json_texts()
        self.found.unclassified = sorted(
            {text for m in re.finditer(STRING, code) if (text := literal(m.group(0))) is not None}
            - self.classified
            - NOT_VOCABULARY
        )
        return self.found

    def indexed(self, key: str, vocabulary: type[StrEnum]) -> None:
        """``x['key']`` assigned or compared."""
        index = rf"\[\s*'{key}'\s*\]"
        for m in re.finditer(rf"{index}\s*(?:==|~=|=)\s*({EXPR})", self.code):
            self.check(m.group(1), m.group(0), vocabulary)
        for m in re.finditer(rf"{START}({EXPR})\s*(?:==|~=)\s*[\w.]+{index}", self.code):
            self.check(m.group(1), m.group(0), vocabulary)

    def status_fields(self) -> None:
        """``'status', X`` among the fields of an HSET (the meta hash) or an event."""
        for command, args in calls(self.code) + tables(self.code):
            if command not in ("HSET", "XADD"):
                continue
            where: tuple[type[StrEnum], ...] = (RunStatus,) if command == "HSET" else (TaskStatus, RunStatus)
            for position, arg in enumerate(args[:-1]):
                if arg == "'status'":
                    self.check(args[position + 1], f"{command} ... 'status', {args[position + 1]}", *where)

    def json_texts(self) -> None:
        """``"status":"..."`` or ``"state":"..."`` inside a literal (JSON text the script matches)."""
        for m in re.finditer(STRING, self.code):
            for key, vocabulary in (("status", TaskStatus), ("state", AttemptState)):
                for inner in re.finditer(rf'"{key}"\s*:\s*"([^"]*)"', m.group(0)):
                    self.classified.add(literal(m.group(0)) or "")
                    self.add(inner.group(1), m.group(0), vocabulary)

    def check(self, expr: str, where: str, *vocabularies: type[StrEnum]) -> None:
        for value in self.values(expr, frozenset()):
            self.add(value, where, *vocabularies)

    def add(self, value: str, where: str, *vocabularies: type[StrEnum]) -> None:
        self.classified.add(value)
        self.found.words.append(Word(self.name, value, where, vocabularies))

    def values(self, expr: str, seen: frozenset[str]) -> set[str]:
        """The words ``expr`` may hold: itself, the literals assigned to it, or (ARGV) compared with it."""
        text = literal(expr)
        if text is not None:
            return {text}
        if expr in seen:
            return set()
        name = re.escape(expr)
        out: set[str] = set()
        for m in re.finditer(rf"{START}{name}\s*=(?!=)\s*({EXPR})", self.code):
            out |= self.values(m.group(1), seen | {expr})
        # An argument, or a local that names one (``local status = ARGV[2]``): the words it is compared with
        if expr.startswith("ARGV[") or re.search(rf"{START}{name}\s*=\s*ARGV\[", self.code):
            for m in re.finditer(rf"{START}{name}\s*(?:==|~=)\s*({STRING})", self.code):
                out.add(literal(m.group(1)) or "")
            for m in re.finditer(rf"({STRING})\s*(?:==|~=)\s*{name}", self.code):
                out.add(literal(m.group(1)) or "")
        return out


def extract(name: str, source: str) -> Found:
    """The vocabulary words of one script, and its literals no rule placed."""
    return Extractor(name, source).run()


def problems(found: Found, name: str) -> list[str]:
    """What is wrong: words that are not members, literals that no rule placed."""
    out = [str(w) for w in found.words if not w.is_member()]
    out += [
        f"{name}.lua: the literal {text!r} is neither in a place for a status, state or kind "
        "nor a known Redis word, field name or reply: make it a member, or list it in this test"
        for text in found.unclassified
    ]
    return out


# ---- the scripts ---------------------------------------------------------------------------


def test_every_script_is_read() -> None:
    assert {p.stem for p in LUA_FILES} == {f.name for f in dataclasses.fields(scripts.Scripts)}


@pytest.mark.parametrize("path", LUA_FILES, ids=lambda p: p.stem)
def test_every_word_a_script_spells_is_a_member_of_its_enum(path: Path) -> None:
    found = extract(path.stem, path.read_text("utf-8"))
    assert problems(found, path.stem) == []


def test_the_scripts_write_every_event_kind_but_those_python_writes() -> None:
    """The extractor saw every kind (it does not pass by finding nothing), and no member is dead."""
    kinds = set().union(*(extract(p.stem, p.read_text("utf-8")).values(EventKind) for p in LUA_FILES))
    assert kinds == {k.value for k in EventKind} - KINDS_WRITTEN_IN_PYTHON


def test_the_scripts_spell_every_attempt_state() -> None:
    states = set().union(*(extract(p.stem, p.read_text("utf-8")).values(AttemptState) for p in LUA_FILES))
    assert states == {s.value for s in AttemptState}


def test_the_run_statuses_the_status_script_compares_are_the_finished_ones() -> None:
    found = extract("set_run_status", (LUA_DIR / "set_run_status.lua").read_text("utf-8"))
    assert found.values(RunStatus) == {"succeeded", "failed", "cancelled", "error"}


# ---- the extractor catches what it must -------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("redis.call('XADD', KEYS[1], '*', 'kind', 'finishd', 'task', ARGV[1])", "'finishd'"),
        (
            "local kind = 'finished'\nif x then kind = 'retyr' end\n"
            "redis.call('XADD', KEYS[1], '*', 'kind', kind)",
            "'retyr'",
        ),
        ("local fields = { 'kind', 'strated', 'task', ARGV[1] }", "'strated'"),
        ("entry['state'] = 'runing'", "'runing'"),
        ("if entry['state'] ~= 'quened' then return 0 end", "'quened'"),
        ("if decoded['status'] == 'succes' then return 1 end", "'succes'"),
        ("redis.call('HSET', KEYS[1], 'status', ARGV[1])\nif ARGV[1] == 'succeded' then end", "'succeded'"),
        ('local prefix = \'{"status":"sucess"\'', "'sucess'"),
        ("local fields = { 'kind', 'run', 'status', 'succeded' }", "'succeded'"),
        ("redis.call('SET', KEYS[1], 'finishd')", "'finishd'"),  # a place no rule knows
    ],
)
def test_the_extractor_reports_a_misspelt_word(source: str, expected: str) -> None:
    found = problems(extract("example", source), "example")
    assert len(found) == 1 and expected in found[0], found


def test_the_extractor_accepts_members_and_ignores_comments() -> None:
    source = (
        "-- 'kind', 'nonsense' in a comment is not code\n"
        "local kind = 'finished'\n"
        "if ARGV[5] == '1' then kind = 'retry' end\n"
        "entry['state'] = 'retry_wait'\n"
        "redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'kind', kind, 'status', ARGV[4])\n"
    )
    found = extract("example", source)
    assert problems(found, "example") == []
    assert found.values(EventKind) == {"finished", "retry"}
    assert found.values(AttemptState) == {"retry_wait"}


# ---- the enums themselves ---------------------------------------------------------------------


def test_members_read_the_same_in_json_redis_and_text() -> None:
    for vocabulary in (TaskStatus, RunStatus, AttemptState, EventKind, RunEventKind):
        for member in vocabulary:
            assert member == member.value and str(member) == f"{member}" == member.value
            assert orjson.loads(orjson.dumps({"v": member})) == {"v": member.value}


def test_task_status_is_one_class_wherever_it_is_imported_from() -> None:
    assert task_module.TaskStatus is TaskStatus


def test_listeners_are_registered_by_name_or_member() -> None:
    bus = EventBus()
    seen: list[str] = []
    bus.on("task_end", lambda e: seen.append(f"name:{e.task}"))
    bus.on(RunEventKind.TASK_END, lambda e: seen.append(f"member:{e.task}"))
    bus.emit(RunEvent(RunEventKind.TASK_END, "r", "a"))
    assert seen == ["name:a", "member:a"]
    with pytest.raises(RqdagError, match=r"unknown event 'task_done' \(known: task_end, task_retry, "):
        bus.on("task_done", print)
