"""``python -m stability``: the same command as ``stability``."""

from stability.cli.app import main

main()
