"""`python -m gateway` runs the same command line as `tollgate`."""

from gateway.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
