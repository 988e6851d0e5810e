"""rediss:// end to end: a TLS-only redis-server, a worker and a coordinator over TLS."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import redis

from rqdag import TaskStatus
from rqdag.client import Client
from rqdag.errors import EmbeddedRedisError
from rqdag.local.redis_server import RedisServer, find_redis_server
from tests.integration.flows import recoverable
from tests.support.processes import Procs
from tests.support.redis import free_port, skip_or_fail


def _certificates(folder: Path) -> dict[str, Path]:
    ca_key, ca, key, csr, cert = (
        folder / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )
    ext = folder / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    steps = [
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            ca_key,
            "-out",
            ca,
            "-days",
            "2",
            "-subj",
            "/CN=rqdag test CA",
        ],
        [
            "openssl",
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            csr,
            "-subj",
            "/CN=127.0.0.1",
        ],
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            ca,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-out",
            cert,
            "-days",
            "2",
            "-extfile",
            ext,
        ],
    ]
    for step in steps:
        subprocess.run([str(s) for s in step], check=True, capture_output=True)
    return {"ca": ca, "key": key, "cert": cert}


def test_a_run_over_rediss(tmp_path: Path, procs: Procs) -> None:
    if shutil.which("openssl") is None:
        skip_or_fail("no openssl to make certificates")
    certs = _certificates(tmp_path)
    port = free_port()
    server = RedisServer(
        tmp_path / "data",
        extra_args=(
            "--tls-port",
            str(port),
            "--tls-cert-file",
            str(certs["cert"]),
            "--tls-key-file",
            str(certs["key"]),
            "--tls-ca-cert-file",
            str(certs["ca"]),
            "--tls-auth-clients",
            "no",
        ),
    )
    (tmp_path / "data").mkdir()
    try:
        server.start()
    except EmbeddedRedisError as exc:
        if "tls" in str(exc).lower():
            skip_or_fail(f"this redis-server ({find_redis_server()}) has no TLS: {exc}")
        raise
    try:
        url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={certs['ca']}&ssl_cert_reqs=required"
        procs.worker(url)
        procs.coordinator(url)
        run = Client(url).submit(recoverable, params={"fixed": True}, run_id="over-tls")
        assert {r.status for r in run.wait(timeout=30).values()} == {TaskStatus.SUCCESS}
        with (
            redis.Redis(host="127.0.0.1", port=port, socket_timeout=2) as plain,
            pytest.raises(redis.ConnectionError),
        ):
            plain.ping()
    finally:
        server.stop()
