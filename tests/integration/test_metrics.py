"""Prometheus metrics of a real coordinator and a real worker, scraped over HTTP during and after a run."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import prometheus_client
import redis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from rqdag.client import Client
from rqdag.shared.metrics import Recorder
from rqdag.shared.model.task import TaskStatus
from tests.integration.flows import recoverable
from tests.integration.test_cli_deploy import parse_cli
from tests.support import REPO
from tests.support.hidden import hiding_env
from tests.support.processes import Procs, rqdag_command, rqdag_env
from tests.support.redis import free_port
from tests.support.wait import wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples | None:
    """Every sample the endpoint serves, by name and labels; None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
            text = reply.read().decode()
    except OSError:
        return None
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when the series does not exist yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def by_label(samples: Samples, name: str, *keys: str) -> dict[tuple[str, ...], float]:
    """The non-zero samples of ``name``, summed by the values of ``keys``."""
    out: Counter[tuple[str, ...]] = Counter()
    for (sample, labels), v in samples.items():
        if sample == name and v:
            given = dict(labels)
            out[tuple(given[k] for k in keys)] += v
    return dict(out)


def test_a_coordinator_and_a_worker_serve_the_counts_of_the_run(
    redis_url: str, redis_conn: redis.Redis, procs: Procs
) -> None:
    c_port, w_port = free_port(), free_port()
    procs.coordinator(redis_url, "--metrics-port", str(c_port))
    procs.worker(redis_url, "--metrics-port", str(w_port))
    wait_for(lambda: scrape(c_port), 20, "the coordinator's metrics endpoint")
    wait_for(lambda: scrape(w_port), 20, "the worker's metrics endpoint")

    # a: success (sleeps 1.5 s, scraped meanwhile); b: failure; c: skipped; d: fails once, then succeeds
    handle = Client(connection=redis_conn).submit(recoverable, params={"sleep_s": 1.5})
    wf = {"workflow": "recoverable"}
    during_w = wait_for(
        lambda: (s := scrape(w_port)) and value(s, "rqdag_tasks_started_total", **wf, task="a") == 1 and s,
        20,
        "task a to start",
    )
    assert value(during_w, "rqdag_worker_slots_busy") == 1
    during_c = scrape(c_port)
    assert during_c is not None
    assert value(during_c, "rqdag_runs", **wf, status="running") == 1

    results = handle.wait(timeout=60)
    ran = Counter(line["task"] for line in procs.ledger_lines())
    assert ran == {"a": 1, "b": 1, "d": 2}
    assert {n: r.status for n, r in results.items()} == {
        "a": TaskStatus.SUCCESS,
        "b": TaskStatus.FAILURE,
        "c": TaskStatus.SKIPPED,
        "d": TaskStatus.SUCCESS,
    }
    # what the run says, attempt by attempt: every attempt but the last of a task failed
    finished: Counter[tuple[str, str]] = Counter()
    for name, result in results.items():
        finished[(name, result.status.value)] += 1
        if ran[name] > 1:
            finished[(name, "failure")] += ran[name] - 1

    def worker_done() -> Samples | None:
        s = scrape(w_port)
        total = s and sum(by_label(s, "rqdag_tasks_finished_total", "task").values())
        idle = s and value(s, "rqdag_worker_slots_busy") == 0
        return s if total == sum(ran.values()) and idle else None

    after_w = wait_for(worker_done, 10, "the worker's last job to be counted, its slot free")
    after_c = scrape(c_port)
    assert after_c is not None

    assert by_label(after_w, "rqdag_tasks_started_total", "workflow", "task") == {
        ("recoverable", name): n for name, n in ran.items()
    }
    served = Counter(by_label(after_w, "rqdag_tasks_finished_total", "task", "status"))
    served.update(by_label(after_c, "rqdag_tasks_finished_total", "task", "status"))  # c: decided there
    assert served == finished
    assert by_label(after_c, "rqdag_tasks_finished_total", "task", "status") == {("c", "skipped"): 1}
    for histogram in ("rqdag_task_duration_seconds", "rqdag_task_queue_wait_seconds"):
        counts = by_label(after_w, f"{histogram}_count", "task")
        assert counts == {(name,): n for name, n in ran.items()}, histogram
    assert value(after_w, "rqdag_task_duration_seconds_sum", **wf, task="a") >= 1.5
    assert not by_label(after_w, "rqdag_late_results_refused_total", "task")

    assert value(after_c, "rqdag_runs", **wf, status="running") == 0
    assert value(after_c, "rqdag_runs_finished_total", **wf, status="failed") == 1
    for counter in (
        "rqdag_attempts_lost_total",
        "rqdag_attempts_handed_back_total",
        "rqdag_attempts_unstarted_total",
    ):
        assert not by_label(after_c, counter, "task"), counter
    assert value(after_c, "rqdag_leases_acquired_total") == 1
    assert value(after_c, "rqdag_lease_takeovers_total") == 0
    assert value(after_c, "rqdag_redis_errors_total", kind="ConnectionError") == 0
    assert value(after_c, "process_cpu_seconds_total") > 0


def test_metrics_port_without_prometheus_client_fails_in_one_line(redis_url: str, tmp_path: Path) -> None:
    env = hiding_env(tmp_path, "prometheus_client")
    for command in ("coordinator", "worker"):
        extra = ["--tasks", "tests.integration.flows"] if command == "worker" else []
        argv = rqdag_command(command, "--redis", redis_url, *extra, "--metrics-port", str(free_port()))
        proc = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().splitlines() == [
            "error: serving metrics (--metrics-port) needs prometheus_client: pip install 'rqdag[metrics]'"
        ]


def test_a_metrics_port_in_use_is_refused_in_one_line(redis_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = rqdag_command("worker", "--redis", redis_url, "--tasks", "tests.integration.flows")
        proc = subprocess.run(
            [*argv, "--metrics-port", str(port)],
            cwd=REPO,
            env=rqdag_env(),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot serve metrics on 0.0.0.0:{port}: "), line


def test_without_metrics_nothing_imports_prometheus_client() -> None:
    code = (
        "import sys, rqdag, rqdag.cli, rqdag.worker.job, rqdag.coordinator.service\n"
        "assert 'prometheus_client' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=rqdag_env(), check=True, timeout=30)


def test_compose_monitoring_profile_scrapes_the_services_that_serve_metrics() -> None:
    services = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))["services"]
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["monitoring"]
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            assert not source.startswith("./") or (REPO / source).exists(), volume
    [config_mount] = [
        v for v in services["prometheus"]["volumes"] if v.endswith(":/etc/prometheus/prometheus.yml:ro")
    ]
    config = yaml.safe_load((REPO / config_mount.split(":")[0]).read_text(encoding="utf-8"))

    served = {
        name: parse_cli(services[name]["command"]).params["metrics_port"]
        for name in ("coordinator", "worker")
    }
    scraped = {
        host: sd["port"]
        for job in config["scrape_configs"]
        for sd in job["dns_sd_configs"]
        for host in sd["names"]
    }
    assert scraped == served and set(served.values()) == {9464}

    provisioning = REPO / "deploy/grafana/provisioning"
    [source] = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())["datasources"]
    host, port = source["url"].removeprefix("http://").split(":")
    assert host in services and f"{port}:{port}" in services[host]["ports"]


def test_the_grafana_dashboard_asks_only_for_metrics_rqdag_serves() -> None:
    dashboard = json.loads((REPO / "deploy/grafana/rqdag.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    asked = {name for expr in exprs for name in re.findall(r"\brqdag_[a-z_]+", expr)}
    defined = {m.name for m in Recorder(prometheus_client).registry.collect()}
    series = {f"{n}{suffix}" for n in defined for suffix in ("", "_total", "_bucket", "_count", "_sum")}
    assert asked and asked <= series, asked - series
    every_metric = {n for n in defined if n.startswith("rqdag_")}
    assert every_metric <= {n.removesuffix("_total").removesuffix("_bucket") for n in asked}, (
        "not on the dashboard"
    )
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_a_coordinator_that_takes_a_dead_ones_run_over_counts_the_takeover(
    redis_url: str, redis_conn: redis.Redis, procs: Procs
) -> None:
    procs.worker(redis_url)
    first = procs.coordinator(redis_url, "--lease-ttl", "1", name="first")
    handle = Client(connection=redis_conn).submit(recoverable, params={"sleep_s": 2})
    wait_for(lambda: procs.ledger_lines(), 20, "task a to start")
    first.kill()
    first.wait()
    port = free_port()
    procs.coordinator(redis_url, "--lease-ttl", "1", "--metrics-port", str(port), name="second")
    results = handle.wait(timeout=60)
    assert results["a"].status is TaskStatus.SUCCESS and results["a"].metrics.attempt == 1
    samples = wait_for(lambda: scrape(port), 10, "the second coordinator's metrics")
    assert value(samples, "rqdag_lease_takeovers_total") == 1
    assert value(samples, "rqdag_leases_acquired_total") == 1
    assert not by_label(samples, "rqdag_attempts_lost_total", "task")
    assert value(samples, "rqdag_runs_finished_total", workflow="recoverable", status="failed") == 1
