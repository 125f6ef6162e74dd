"""``python -m emkit``: the ``emkit`` command line, where the console script is not on the PATH."""

if __name__ == "__main__":
    from .cli import main

    main()
