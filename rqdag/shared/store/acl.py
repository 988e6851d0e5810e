"""Asking Redis what the current user may do, without doing it, and saying what it may not.

:func:`refusals` judges each :class:`Need` (a whole command line) for this
client's user:

- ``ACL DRYRUN`` (Redis >= 7.0, for a user that may run it) answers for each;
- otherwise each command is sent inside ``MULTI`` and thrown away with
  ``DISCARD``: Redis checks a command's permissions when it queues it, so a
  refusal shows without anything being run;
- a server without ACLs (Redis < 6), or one that answers neither way, gives None.

Only a refusal counts (NOPERM); any other answer (an unknown command, a syntax
error) is not a permission matter.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from redis.connection import Connection
from redis.exceptions import NoPermissionError

from rqdag.errors import RqdagError

log = logging.getLogger("rqdag")

_SUBCOMMANDS = frozenset({"SCRIPT", "CLIENT"})
_NOT_PROBED = frozenset({"MULTI", "EXEC", "DISCARD"})  # would end or nest the probing transaction


@dataclass(frozen=True)
class Need:
    """One command a role sends (a whole command line), and the key family it names."""

    args: tuple[str, ...]
    keys: str = ""  # RQDAG_KEYS, RQ_KEYS, or "" for a command without keys
    channel: bool = False
    optional: str = ""  # what is lost without it: a warning instead of an error

    @property
    def name(self) -> str:
        """``EVALSHA``, ``SCRIPT LOAD``..."""
        head = self.args[0].upper()
        return f"{head} {self.args[1].upper()}" if head in _SUBCOMMANDS else head

    @property
    def key(self) -> str:
        """The first of its arguments in its key family ("" for a command without keys)."""
        prefix = self.keys.rstrip("*")
        return next((a for a in self.args[1:] if prefix and a.startswith(prefix)), "")

    @property
    def grant(self) -> str:
        """The narrowest ACL rule that grants the command: ``+xadd``, ``+script|load``."""
        return "+" + self.name.lower().replace(" ", "|")

    @property
    def channels(self) -> str:
        """The ACL rule that grants its channel (``&rq:pubsub:*``), or "" for a command without one."""
        return "&" + self.args[1].rsplit(":", 1)[0] + ":*" if self.channel else ""

    @property
    def rule(self) -> str:
        """The ACL rule an error message suggests (a script command: the whole category)."""
        return "+@scripting" if self.name in ("EVALSHA", "SCRIPT LOAD") else self.grant


@dataclass(frozen=True)
class Refusal:
    """A need the server refused, and what it said."""

    need: Need
    message: str

    @property
    def kind(self) -> str:
        """``command``, ``key`` or ``channel``: what the refusal is about."""
        text = self.message.lower().rsplit("'", 1)[-1]  # past any quoted key or command name
        if "channel" in text:
            return "channel"
        if "key" in text:
            return "key"
        return "command"


def refusals(client: redis.Redis, user: str, needs: Sequence[Need]) -> list[Refusal] | None:
    """The needs ``user`` (this client's user) may not have, or None when the server cannot say."""
    found = _dryrun(client, user, needs)
    return found if found is not None else _probe(client, needs)


def current_user(client: redis.Redis) -> str | None:
    """The name of this client's Redis user, or None on a server without ACLs."""
    try:
        name: Any = client.execute_command("ACL", "WHOAMI")  # type: ignore[no-untyped-call]
    except NoPermissionError:
        named = client.connection_pool.connection_kwargs.get("username")
        return str(named or "default")
    except redis.ResponseError:
        return None  # Redis < 6: no ACL, nothing to check
    return name.decode() if isinstance(name, bytes) else str(name)


def _dryrun(client: redis.Redis, user: str, needs: Sequence[Need]) -> list[Refusal] | None:
    """The refusals ``ACL DRYRUN`` reports, or None where the server or user cannot run it."""
    with _connection(client) as conn:
        commands = [("ACL", "DRYRUN", user, *n.args) for n in needs]
        replies = _replies(conn, [("ACL", "DRYRUN", user, "PING"), *commands])
    if isinstance(replies[0], Exception):
        return None
    refused = []
    for need, reply in zip(needs, replies[1:], strict=True):
        if isinstance(reply, Exception):
            continue  # a command this server does not know: not a permission matter
        text = reply.decode() if isinstance(reply, bytes) else str(reply)
        if text != "OK":
            refused.append(Refusal(need, text))
    return refused


def _probe(client: redis.Redis, needs: Sequence[Need]) -> list[Refusal] | None:
    """The refusals Redis gives when each command is queued in a MULTI that is then discarded.

    Redis checks permissions when it queues a command, and DISCARD drops them all:
    nothing is run. MULTI is sent alone first: were it refused, the commands after
    it would run for real.
    """
    probed = [n for n in needs if n.name not in _NOT_PROBED and not n.channel]
    with _connection(client) as conn:
        first = _replies(conn, [("MULTI",)])[0]
        if isinstance(first, NoPermissionError):
            multi = next((n for n in needs if n.name == "MULTI"), Need(("MULTI",)))
            return [Refusal(multi, str(first))]
        if isinstance(first, Exception):
            return None
        replies = _replies(conn, [*[n.args for n in probed], ("DISCARD",)])
        if isinstance(replies[-1], Exception):
            # DISCARD refused: closing the connection drops the transaction just as well
            conn.disconnect()  # type: ignore[no-untyped-call]
    return [
        Refusal(need, str(reply))
        for need, reply in zip(probed, replies, strict=False)
        if isinstance(reply, NoPermissionError)
    ]


@contextmanager
def _connection(client: redis.Redis) -> Iterator[Connection]:
    """One connection of ``client``'s pool, dropped (not reused) if anything went wrong on it."""
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        yield conn
    except BaseException:
        conn.disconnect()  # type: ignore[no-untyped-call]
        raise
    finally:
        pool.release(conn)


def _replies(conn: Connection, commands: Sequence[Sequence[str]]) -> list[Any]:
    """Send ``commands`` in one round trip; each reply, or the error it was."""
    conn.send_packed_command(conn.pack_commands(commands))  # type: ignore[no-untyped-call]
    out: list[Any] = []
    for _ in commands:
        try:
            out.append(conn.read_response())
        except redis.ResponseError as exc:
            out.append(exc)
    return out


def check_permissions(client: redis.Redis, needs: Sequence[Need], *, role: str) -> list[str]:
    """Raise RqdagError, in one line, naming what ``role`` may not do; returns the warnings.

    ``role`` reads in the message: "a coordinator", "a worker", "submit". A
    refused need marked optional becomes a warning (returned and logged).
    """
    user = current_user(client)
    if user is None:
        return []
    refused = refusals(client, user, needs)
    if refused is None:
        log.info("cannot check the permissions of Redis user '%s' on this server; not checked", user)
        return []
    errors = [r for r in refused if not r.need.optional]
    if errors:
        raise RqdagError(describe(user, errors, role))
    warnings = [f"{describe(user, [r], role)}: {r.need.optional}" for r in refused]
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


def explain_refusal(client: redis.Redis, exc: Exception, needs: Sequence[Need], *, role: str) -> str:
    """What a refused command means: ``role``'s missing permissions named, or else Redis's own words."""
    try:
        check_permissions(client, needs, role=role)
    except RqdagError as named:
        return str(named)
    except redis.RedisError:
        pass
    return "Redis refused a command: " + " ".join(str(exc).split())


def describe(user: str, refusals: Sequence[Refusal], role: str) -> str:
    """One line: ``Redis user 'app' may not run XADD (ACL: +xadd); needed by a worker``.

    Refusals that one ACL rule grants are named together.
    """
    groups: dict[tuple[str, str], list[Refusal]] = {}
    for refusal in refusals:
        groups.setdefault((refusal.kind, _rule(refusal)), []).append(refusal)
    parts = []
    for (kind, rule), group in groups.items():
        first = group[0].need
        if kind == "key":
            refused = f"{first.name} on {first.key!r}"
            parts += [f"may not touch keys '{first.keys}' ({refused} refused; ACL: {rule})"]
        elif kind == "channel":
            parts += [f"may not subscribe to {first.args[1]!r} (ACL: {rule})"]
        else:
            names = ", ".join(dict.fromkeys(r.need.name for r in group))
            parts += [f"may not run {names} (ACL: {rule})"]
    return f"Redis user '{user}' " + "; ".join(parts) + f"; needed by {role}"


def _rule(refusal: Refusal) -> str:
    if refusal.kind == "key":
        return "~" + refusal.need.keys
    if refusal.kind == "channel":
        return refusal.need.channels
    return refusal.need.rule


def acl_rules(needs: Iterable[Need]) -> list[str]:
    """The least ACL rules that grant ``needs`` (for ``ACL SETUSER``), optional ones included."""
    rules = ["resetkeys", "resetchannels", "-@all"]
    rules += dict.fromkeys(f"~{n.keys}" for n in needs if n.keys)
    rules += dict.fromkeys(n.grant for n in needs)
    rules += dict.fromkeys(n.channels for n in needs if n.channel)
    return rules
