"""``python -m sfu``: the same command as the ``sfu`` console script."""

from sfu.cli import main

if __name__ == "__main__":
    main()
