"""`rqdag run` on the embedded default: a private redis-server and local workers."""

from __future__ import annotations

import json
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from rqdag.local.processes import process_alive
from tests.support.ledger import read_ledger
from tests.support.processes import rqdag_command, rqdag_env, spawn_logged
from tests.support.wait import wait_until

FLOW = """
import json, os, time
from rqdag import Task, Workflow

def work(ctx):
    with open(os.environ["RQDAG_TEST_LEDGER"], "a") as out:
        out.write(json.dumps({"task": ctx.task, "attempt": ctx.attempt, "pid": os.getpid()}) + "\\n")
    time.sleep(0.15)
    return ctx.task

flow = Workflow("embedded")
flow.add(Task("t0", work))
for i in range(1, 30):
    flow.add(Task(f"t{i}", work, depends_on=[f"t{i - 1}"] + ([f"t{i - 2}"] if i > 1 else [])))
"""


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _run(tmp_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    return spawn_logged(
        rqdag_command("run", "flow.py:flow", "--run-id", "emb-1", *extra),
        tmp_path / "run.log",
        env=rqdag_env(tmp_path / "ledger.jsonl"),
        cwd=tmp_path,
        pipe_stdout=True,
    )


def _ledger(tmp_path: Path) -> list[dict[str, Any]]:
    return read_ledger(tmp_path / "ledger.jsonl")


def test_embedded_run_killed_then_rerun_resumes_without_rerunning_successes(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    first = _run(tmp_path)
    wait_until(lambda: len(_ledger(tmp_path)) >= 8, 60, "a third of the run done")
    children = _children(first.pid)
    assert len(children) >= 3, f"expected redis-server and 2 workers, got {children}"
    first.send_signal(signal.SIGKILL)
    first.communicate()
    wait_until(lambda: not any(process_alive(p) for p in children), 15, "children to die with rqdag run")
    done_before = len(_ledger(tmp_path))
    assert done_before < 30

    second = _run(tmp_path, "--json")
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, (tmp_path / "run.log").read_text()[-3000:]
    document = json.loads(out)
    assert document["run"]["status"] == "succeeded"
    results = document["results"]
    assert len(results) == 30 and {r["status"] for r in results.values()} == {"success"}
    starts = Counter(str(line["task"]) for line in _ledger(tmp_path))
    for name, result in results.items():
        # a recorded success is never followed by another run: every start is an attempt
        assert starts[name] == result["metrics"]["attempt"], (name, starts[name], result["metrics"])


def test_ctrl_c_detaches_and_the_same_command_goes_on(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    first = _run(tmp_path)
    wait_until(lambda: len(_ledger(tmp_path)) >= 4, 60, "the run under way")
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=60)
    assert "detached" in (tmp_path / "run.log").read_text()
    assert not (tmp_path / ".rqdag" / "redis.pid").exists() or not process_alive(
        int((tmp_path / ".rqdag" / "redis.pid").read_text().split()[0])
    )
    second = _run(tmp_path, "--json")
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0
    assert json.loads(out)["run"]["status"] == "succeeded"
    starts = Counter(str(line["task"]) for line in _ledger(tmp_path))
    assert set(starts) == {f"t{i}" for i in range(30)}
