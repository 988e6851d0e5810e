"""README.md's tour, run verbatim: its `rqdag ...` lines, with the Redis URL pointed at a test server.

The commands are read from README.md's fenced bash blocks, so the test breaks
when the README and the CLI drift apart. ``myproj`` (the tour's example
project) is written into a temporary folder.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections import Counter
from pathlib import Path

from rqdag.client import Client
from tests.support import REPO
from tests.support.cli import cli_env
from tests.support.processes import Procs, rqdag_command
from tests.support.wait import wait_until

SERVICES = ("worker", "coordinator", "dashboard")
URL = re.compile(r"rediss?://\S+")

MYPROJ_TASKS = '''
"""The tour's tasks: each appends its name to ledger.txt in the working folder."""
from rqdag import TaskContext


class Context:
    payment_gateway = "test-gateway"


def make_context() -> Context:
    return Context()


def _note(ctx: TaskContext) -> None:
    with open("ledger.txt", "a") as out:
        out.write(f"{ctx.task} {ctx.attempt}\\n")


def load_orders(ctx: TaskContext) -> list[dict]:
    _note(ctx)
    return [{"date": ctx.params["date"], "amount": 10}, {"date": ctx.params["date"], "amount": 32}]


def charge_cards(ctx: TaskContext) -> dict:
    _note(ctx)
    orders = ctx.inputs["load_orders"]
    return {"charged": sum(o["amount"] for o in orders), "via": ctx.context.payment_gateway,
            "key": ctx.idempotency_key}
'''

MYPROJ_FLOWS = """
from rqdag import Retry, Task, Workflow
from myproj import tasks

nightly = Workflow("nightly")
nightly.add(Task("load_orders", tasks.load_orders))
retry = Retry(attempts=3, delay_s=0.5, backoff="exponential")
nightly.add(Task("charge_cards", tasks.charge_cards, depends_on=["load_orders"], retry=retry, timeout_s=30,
                 at_most_once=True))
"""


def readme_commands(readme: Path) -> list[str]:
    """Every logical line starting with ``rqdag `` in the README's bash blocks (continuations joined)."""
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", readme.read_text(encoding="utf-8"), flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        commands += [line.strip() for line in joined.splitlines() if line.strip().startswith("rqdag ")]
    return commands


def rqdag_argv(command: str, url: str) -> list[str]:
    """The README's command with its Redis URL replaced, run by this interpreter."""
    words = shlex.split(URL.sub(url, command), comments=True)
    return rqdag_command(*words[1:])


def test_the_readme_tour_runs_verbatim(redis_url: str, tmp_path: Path, procs: Procs) -> None:
    commands = readme_commands(REPO / "README.md")
    subcommands = [shlex.split(c)[1] for c in commands]
    assert {"worker", "coordinator", "submit", "status"} <= set(subcommands), commands
    package = tmp_path / "myproj"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tasks.py").write_text(MYPROJ_TASKS)
    (package / "flows.py").write_text(MYPROJ_FLOWS)
    env = cli_env()
    env["PYTHONPATH"] = f"{tmp_path}:{env['PYTHONPATH']}"
    client = Client(redis_url)

    def all_finished() -> bool:
        return all(m.finished for m in client.runs(1000))

    try:
        for command, sub in zip(commands, subcommands, strict=True):
            argv = rqdag_argv(command, redis_url)
            if sub in SERVICES:
                procs.start(argv, name=sub, env=env, cwd=tmp_path)
                continue
            if sub == "resume":
                wait_until(all_finished, 60, "the tour's runs to end before resuming")
            done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
            logs = "".join(p.read_text() for p in tmp_path.glob("*.log"))
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}\n{logs[-3000:]}"
        wait_until(all_finished, 60, "the tour's runs to end")
        runs = client.runs(1000)
        assert runs and all(m.status == "succeeded" for m in runs), [(m.run_id, m.status) for m in runs]
        ran = Counter(line.split()[0] for line in (tmp_path / "ledger.txt").read_text().splitlines())
        assert ran == {"load_orders": len(runs), "charge_cards": len(runs)}, "a success ran again"
    finally:
        procs.stop_all()
        client.connection.close()
