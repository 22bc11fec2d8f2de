"""The `lsq` command line. One module per command group; errors map to exit codes
in `_main`."""

from lsq.cli._main import cli, main

__all__ = ["cli", "main"]
