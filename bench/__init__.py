"""rqdag's benchmark suite: rqdag against raw RQ on the same machine, in the same run.

Run it with ``python -m bench`` (or ``python bench/run.py``); ``--quick`` for CI.
See ``bench/README.md``.
"""
