"""Write docs/cli.md from the click commands (``--check``: exit 1 if the file is stale)."""

from __future__ import annotations

import sys
from pathlib import Path

from rqdag.cli import main
from rqdag.cli.reference import render_reference

TARGET = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def run(argv: list[str]) -> int:
    """Write (or with ``--check`` compare) the reference; the exit code."""
    text = render_reference(main)
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is stale: run python scripts/gen_cli_reference.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
