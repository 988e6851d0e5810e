"""Loading the Lua scripts of ``lua/*.lua``, and the base of their typed wrappers."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any, ClassVar, Self

import redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import NoScriptError
from redis.typing import EncodableT

from rqdag.errors import RqdagError

# Events streams are trimmed to about this many entries (MAXLEN ~).
EVENTS_MAXLEN = 10_000

ScriptCall = tuple[Sequence[str], Sequence[EncodableT]]  # one call's KEYS and ARGV


@cache
def script_source(name: str) -> str:
    """The text of ``lua/<name>.lua`` (read once per process)."""
    path = resources.files("rqdag.shared.store").joinpath("lua", f"{name}.lua")
    if not path.is_file():
        raise KeyError(f"no rqdag script named {name!r}")
    return path.read_text("utf-8")


class ScriptWrapper:
    """One Lua script registered on one client (EVALSHA, reloaded on NOSCRIPT).

    A subclass is the only code that knows the script's KEYS and ARGV order: its
    ``__call__`` takes named, typed parameters and returns a typed value.
    """

    name: ClassVar[str]

    def __init__(self, script: Script) -> None:
        self._script = script

    @classmethod
    def register(cls, client: redis.Redis) -> Self:
        """Register the script on ``client``."""
        return cls(client.register_script(script_source(cls.name)))

    def _eval(self, keys: Sequence[str], args: Sequence[EncodableT], client: redis.Redis | None) -> Any:
        """Run the script on ``client`` (by default the client it was registered on)."""
        if isinstance(client, Pipeline):  # its reply would come at execute(), untyped
            raise TypeError(f"the {self.name} script answers at once: call it outside a pipeline")
        return self._script(keys, args, client)

    def send(self, call: ScriptCall, client: redis.Redis | None = None) -> Any:
        """One call built by a wrapper's ``request``; its raw reply (the wrapper's ``parse`` types it)."""
        return self._eval(call[0], call[1], client)

    def _eval_many(self, calls: Sequence[ScriptCall], client: redis.Redis) -> list[Any]:
        """Every call as its own EVALSHA, all in one round trip; each call's reply, or its error.

        Each call is the script run once, as atomic and fenced as alone. Sent by
        SHA without redis-py's check-before-every-pipeline round trip; calls that
        found the script missing (a flushed or restarted Redis) are sent again once
        it is loaded.
        """
        replies: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for _ in range(2):
            with client.pipeline(transaction=False) as pipe:
                for i in todo:
                    keys, args = calls[i]
                    pipe.evalsha(self._script.sha, len(keys), *keys, *args)
                answers = pipe.execute(raise_on_error=False)
            for i, answer in zip(todo, answers, strict=True):
                replies[i] = answer
            todo = [i for i in todo if isinstance(replies[i], NoScriptError)]
            if not todo:
                break
            self._script.sha = client.script_load(self._script.script)
        return replies

    def _unexpected(self, reply: Any) -> RqdagError:
        return RqdagError(f"unexpected answer {reply!r} from the {self.name} script")


def text(value: Any) -> str:
    """A reply as text (clients may or may not decode replies)."""
    return value.decode() if isinstance(value, bytes) else str(value)
