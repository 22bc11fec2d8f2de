"""The `lsq` command line. One module per command group; errors map to exit codes
in `_main`.

`main` is the console script. It holds the stop signals while the CLI's
modules load: a Ctrl-C that lands inside an import can be swallowed by
Python's import machinery ("Exception ignored in ..."), and `lsq up` would
then go on as if nothing had been pressed.
"""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING

from lsq._lazy import lazy_exports
from lsq._signals import STOP_SIGNALS

if TYPE_CHECKING:
    from lsq.cli._main import cli


def main(argv: list[str] | None = None) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    if argv is None and sys.argv[1:2] == ["up"]:
        from lsq.cli._early import detached_timeout, up_detached

        timeout = detached_timeout(sys.argv[2:])
        if timeout is not None:  # `lsq up -d [--timeout N]`
            up_detached(timeout)  # from the manifest cache, if it can (lsq.cli._early)
    from lsq.cli._main import _register
    from lsq.cli._main import main as run

    _register()  # the command modules: imports too
    try:
        # A signal that came meanwhile is delivered here: SIGINT as
        # KeyboardInterrupt, the others with their default action.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    except KeyboardInterrupt:
        sys.exit(128 + signal.SIGINT)
    run(argv)


__getattr__ = lazy_exports("lsq.cli", {"cli": "_main"})

__all__ = ["cli", "main"]
