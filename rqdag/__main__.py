"""``python -m rqdag``: the command line."""

from rqdag.cli import main

main()
