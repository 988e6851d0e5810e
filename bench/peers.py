"""Section 6, peers (optional): Dramatiq and Celery on the shapes of sections 1 and 2.

They come with the ``bench`` extra (``pip install -e '.[bench]'``); the suite never
installs them. A peer that is not importable gets a row saying so; with neither,
the section is skipped with that reason. A peer whose run fails gets a row with
the error, so that a broken peer does not cost the results of sections 1-5.
Runs after every rqdag and raw RQ worker pool is closed, alone on the machine.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from bench.config import Config
from bench.server import BenchRedis
from bench.stats import Row

SECTION = "6. Peers"
INSTALL = "pip install -e '.[bench]'"


@dataclass(frozen=True)
class Peer:
    """A peer: its display name and the package that must be importable."""

    name: str
    package: str

    @property
    def installed(self) -> bool:
        """True when the package can be imported."""
        return importlib.util.find_spec(self.package) is not None


PEERS = (Peer("Dramatiq", "dramatiq"), Peer("Celery", "celery"))


def skip_reason() -> str | None:
    """Why section 6 has no rows at all, or None when at least one peer is installed."""
    if any(peer.installed for peer in PEERS):
        return None
    names = " and ".join(peer.package for peer in PEERS)
    return f"{names} not installed (the suite does not install peers: {INSTALL})"


def measure(bench: BenchRedis, config: Config, progress: Callable[[str], None]) -> list[Row]:
    """Every peer's rows, in turn; a peer that is missing or fails gets one row with the reason."""
    rows: list[Row] = []
    for peer in PEERS:
        if not peer.installed:
            rows.append(missing_row(peer.name, f"skipped: {peer.package} not installed ({INSTALL})"))
            continue
        try:
            rows.extend(_runner(peer)(bench, config, progress))
        except Exception as exc:  # the one boundary: a peer's failure becomes its row
            progress(f"6. peers: {peer.name} failed: {exc!r}")
            rows.append(missing_row(peer.name, f"failed: {type(exc).__name__}: {exc}"))
    return rows


def missing_row(peer: str, reason: str) -> Row:
    """The row of a peer that was not measured, with the reason."""
    return Row(section=SECTION, measure=peer, unit="", rqdag=None, reference=None, reference_name=reason)


Runner = Callable[[BenchRedis, Config, Callable[[str], None]], list[Row]]


def _runner(peer: Peer) -> Runner:
    # Imported only once the peer is known to be installed: the runners import it.
    if peer.package == "dramatiq":
        from bench import peer_dramatiq

        return peer_dramatiq.measure
    from bench import peer_celery

    return peer_celery.measure
