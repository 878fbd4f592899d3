"""``python -m synthc``: the same as the ``synthc`` command."""

from synthc.cli import main

if __name__ == "__main__":
    main()
