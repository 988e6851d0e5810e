"""Child processes that see some installed packages as not installed (an optional extra left out).

:func:`hiding_env` writes a ``sitecustomize.py`` whose meta-path finder refuses
the named top-level packages, and returns the environment that loads it first.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.processes import rqdag_env

_SITECUSTOMIZE = '''\
import sys


class _Hidden:
    """Refuses the hidden packages, as if they were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".", 1)[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)", name=name)
        return None


HIDDEN = set(%r)
sys.meta_path.insert(0, _Hidden())
'''


def hiding_env(folder: Path, *packages: str, ledger: Path | None = None) -> dict[str, str]:
    """The environment of a child rqdag process to which ``packages`` look uninstalled."""
    site = folder / "hidden-site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE % (sorted(packages),), encoding="utf-8")
    env = rqdag_env(ledger)
    env["PYTHONPATH"] = f"{site}:{env['PYTHONPATH']}"
    return env
