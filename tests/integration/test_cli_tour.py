"""README.md's five-minute tour, typed as written in a fresh clone of the repository.

The tour's bash block is read from README.md and each of its lines runs with
bash, as written, in a ``git clone`` of this repository: ``rqdag`` is on PATH the
way an installed package puts it there (the package importable, the clone's own
folder not on the import path). The one change is the ``export REDIS_URL=`` line,
pointed at this test's redis-server. The services (``rqdag worker``, ``rqdag
coordinator``) run in the background, as they would in terminals of their own.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from rqdag.client import Client
from tests.support import REPO
from tests.support.cli import cli_env
from tests.support.processes import Procs

TOUR = "## A five-minute tour"
SERVICES = ("rqdag worker ", "rqdag coordinator")
URL = re.compile(r"rediss?://\S+")
RUN_ID = "nightly-2026-11-28"


def tour_lines(readme: Path) -> list[str]:
    """The commands of the tour's bash block (continuations joined, comments and blank lines left out)."""
    text = readme.read_text(encoding="utf-8")
    found = re.search(r"```bash\n(.*?)```", text[text.index(TOUR) :], flags=re.S)
    assert found, "the README's tour has no bash block"
    joined = re.sub(r"\\\n\s*", " ", found.group(1))
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def fresh_clone(tmp_path: Path) -> Path:
    """``git clone`` of this repository (its committed state) into ``tmp_path/clone``."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    return clone


def installed_env(tmp_path: Path, clone: Path) -> dict[str, str]:
    """An environment where ``rqdag`` is a command and the clone's ``rqdag`` package is importable.

    As ``pip install`` would have it: the package alone is on the path (``-P``: not
    the working folder either), so ``examples`` is importable only as a file.
    """
    site = tmp_path / "site"
    site.mkdir()
    (site / "rqdag").symlink_to(clone / "rqdag")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    command = bin_dir / "rqdag"
    command.write_text(f'#!/bin/sh\nexec {sys.executable} -P -m rqdag "$@"\n')
    command.chmod(0o755)
    env = cli_env()
    env.pop("REDIS_URL", None)
    env["PYTHONPATH"] = str(site)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env


def test_the_readme_tour_runs_as_written_in_a_fresh_clone(redis_url: str, tmp_path: Path) -> None:
    lines = tour_lines(REPO / "README.md")
    assert lines[0].startswith("export REDIS_URL="), lines
    assert any(line.startswith("rqdag worker --tasks examples/") for line in lines), lines
    clone = fresh_clone(tmp_path)
    env = installed_env(tmp_path, clone)
    session = [URL.sub(redis_url, lines[0])]  # the one change: this test's Redis
    outputs: dict[str, str] = {}
    with Procs(tmp_path) as procs:
        for n, line in enumerate(lines[1:]):
            script = "\n".join([*session, line])
            if line.startswith("export "):
                session.append(line)
            elif line.startswith(SERVICES):
                service = "\n".join([*session, f"exec {line}"])
                procs.start(["bash", "-c", service], name=f"service{n}", env=env, cwd=clone)
            else:
                done = subprocess.run(
                    ["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=120
                )
                logs = "".join(p.read_text() for p in tmp_path.glob("service*.log"))
                assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}\n{logs[-3000:]}"
                outputs[line] = done.stdout
        services = {p.name: p.read_text() for p in tmp_path.glob("service*.log")}
    _check_the_outcome(redis_url, clone, outputs, services)


def _check_the_outcome(
    redis_url: str, clone: Path, outputs: dict[str, str], services: dict[str, str]
) -> None:
    client = Client(redis_url)
    try:
        meta = client.run(RUN_ID).status()
        results = client.run(RUN_ID).snapshot()
    finally:
        client.connection.close()
    assert meta.status == "succeeded", outputs
    assert results["check_stock"].metrics.attempt == 2, "the warehouse's time-out was retried"
    charged = results["charge_cards"].data
    book = clone / ".rqdag" / "shop-payments.jsonl"
    payments = [json.loads(line) for line in book.read_text().splitlines()]
    assert len(payments) == charged["charged"] == len({p["key"] for p in payments}), "each order charged once"
    assert all(p["key"].startswith(f"rqdag:{RUN_ID}:charge_cards") for p in payments), payments
    status = next(out for line, out in outputs.items() if line.startswith("rqdag status"))
    assert re.search(r"check_stock\s+success\s+2\s", status), status
    workers = [log for log in services.values() if "rqdag worker" in log]
    assert workers and all("examples.shop:charge_cards" in log for log in workers), services
    driving = f"run '{RUN_ID}': coordinator"
    assert any(driving in log and "(fence 1)" in log for log in services.values()), services
