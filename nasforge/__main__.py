"""``python -m nasforge``: the same command line as the ``nasforge`` script."""

from nasforge.cli import main

if __name__ == "__main__":
    main()
