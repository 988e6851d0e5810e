"""``python bench/run.py``: the same as ``python -m bench``, from a checkout."""

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
