"""compose.yaml and the Dockerfile, checked without Docker: structure, and commands the CLI accepts."""

from __future__ import annotations

import importlib.util
import json
import re
from typing import Any

import click

from rqdag.cli import main
from rqdag.cli.targets import load_target
from tests.support import REPO

COMPOSE = REPO / "compose.yaml"


def compose() -> dict[str, Any]:
    """compose.yaml parsed with PyYAML when it is installed; else only its commands, read as text."""
    text = COMPOSE.read_text(encoding="utf-8")
    if importlib.util.find_spec("yaml") is not None:
        import yaml  # an optional tool here, not a dependency of rqdag

        loaded: dict[str, Any] = yaml.safe_load(text)
        return loaded
    commands = re.findall(r"^  (\w+):\n(?:    .*\n)*?    command: (\[.*\])$", text, flags=re.M)
    return {"services": {name: {"command": json.loads(cmd)} for name, cmd in commands}}


def parse_cli(argv: list[str]) -> click.Context:
    """Parse ``rqdag ...`` as the CLI would, without running it (UsageError if it would not parse)."""
    assert argv[0] == "rqdag" and argv[1] in main.commands, argv
    return main.commands[argv[1]].make_context(argv[1], argv[2:])


def test_compose_services_run_commands_the_cli_accepts() -> None:
    services = compose()["services"]
    coordinator = parse_cli(services["coordinator"]["command"])
    assert coordinator.params["redis_url"] == "redis://redis:6379/0"
    worker = parse_cli(services["worker"]["command"])
    submitter = parse_cli(services["submitter"]["command"])
    assert submitter.params["wait_"] is True
    # the workers may run every task of the example the submitter sends
    allowed = {m for item in worker.params["tasks"] for m in item.split(",")}
    assert set(load_target(submitter.params["target"]).modules) <= allowed


def test_compose_redis_persistence_scaling_and_profiles() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for needle in (
        "image: redis:7",
        "--appendonly",
        "--appendfsync",
        "everysec",
        "--maxmemory-policy",
        "noeviction",
        "redis-data:/data",
        "replicas: 3",
        'profiles: ["example"]',
    ):
        assert needle in text, needle
    if importlib.util.find_spec("yaml") is None:
        return
    services = compose()["services"]
    assert services["coordinator"]["restart"] == "unless-stopped"
    assert services["worker"]["deploy"]["replicas"] == 3
    assert services["submitter"]["profiles"] == ["example"]
    assert "redis-data" in compose()["volumes"]


def test_dockerfile_is_slim_non_root_and_without_dev_dependencies() -> None:
    lines = [line.strip() for line in (REPO / "Dockerfile").read_text().splitlines()]
    assert "FROM python:3.11-slim" in lines
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    installs = [line for line in lines if "pip install" in line]
    assert installs and not any("[" in line or "-e" in line.split() for line in installs)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)
