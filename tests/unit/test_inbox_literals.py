"""The Lua scripts that tell a driver loop of news spell its inbox's prefix and MAXLEN as keys.py does."""

from __future__ import annotations

import re

from rqdag.shared.store.keys import INBOX_MAXLEN, INBOX_PREFIX
from rqdag.shared.store.scripts import script_source

NOTIFYING = ("finish_task", "finish_jobs", "hand_back", "notify_driver")


def test_every_notifying_script_uses_the_prefix_and_maxlen_of_keys_py() -> None:
    for name in NOTIFYING:
        source = script_source(name)
        assert f"string.sub(inbox, 1, {len(INBOX_PREFIX)}) == '{INBOX_PREFIX}'" in source, name
        assert re.search(rf"XADD', inbox, 'MAXLEN', '~', {INBOX_MAXLEN}\b", source), name
        assert "notify_driver(events_key)" in source, name
