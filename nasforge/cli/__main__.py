"""``python -m nasforge.cli``: the ``nasforge`` command."""

from nasforge.cli import main

main()
