"""The `lsq` command line. One module per command group; errors map to exit codes
in `_main`.

`main` is the console script. It holds the stop signals while the CLI's
modules load: a Ctrl-C that lands inside an import can be swallowed by
Python's import machinery ("Exception ignored in ..."), and `lsq up` would
then go on as if nothing had been pressed.

It also keeps pydantic from looking for plugins (`skip_pydantic_plugins`).
"""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING

from lsq._lazy import lazy_exports
from lsq._signals import STOP_SIGNALS

if TYPE_CHECKING:
    from lsq.cli._main import cli


def skip_pydantic_plugins() -> None:
    """Have pydantic find no plugins in this process.

    Plugins hook into validation for tools that watch an application's own
    models; LSQ's processes validate only LSQ's manifest. Looking for them
    imports `importlib.metadata` and reads every installed package's entry
    points when the first model is checked: about 20 ms of each `lsq up`,
    before any service starts. So the console script puts in pydantic's
    plugin loader (`pydantic.plugin._loader`) one whose `get_plugins` finds
    none; any other name is taken from the real loader, loaded then. Never
    done in a program that imports LSQ as a library.
    """
    import types

    name = "pydantic.plugin._loader"
    if name in sys.modules:
        return
    stub = types.ModuleType(name)

    def get_plugins() -> tuple[()]:
        return ()

    def real(attr: str) -> object:
        if attr.startswith("__"):  # asked by the import system (`__path__`)
            raise AttributeError(attr)
        import importlib.machinery
        import importlib.util

        import pydantic.plugin

        spec = importlib.machinery.PathFinder.find_spec(name, pydantic.plugin.__path__)
        if spec is None or spec.loader is None:
            raise AttributeError(attr)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module  # pydantic asked for more than LSQ knew: let it have all
        return getattr(module, attr)

    stub.get_plugins = get_plugins  # type: ignore[attr-defined]
    stub.__getattr__ = real  # type: ignore[attr-defined]
    sys.modules[name] = stub


def open_std_streams() -> None:
    """Give a closed standard stream (`lsq up -d >&-`) /dev/null instead.

    Otherwise the next pipe or file opened takes its descriptor, and a
    detached runtime, which puts /dev/null and its log on 0, 1 and 2, would
    overwrite it; and Python leaves `sys.stdout` None, which every print
    would fail on."""
    import os

    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: `fd`
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    for name, fd, mode in (("stdin", 0, "r"), ("stdout", 1, "w"), ("stderr", 2, "w")):
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, mode, closefd=False))


def main(argv: list[str] | None = None) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    open_std_streams()
    skip_pydantic_plugins()
    if argv is None and sys.argv[1:2] == ["up"]:
        import gc

        from lsq.cli._early import detached_timeout, up_detached

        timeout = detached_timeout(sys.argv[2:])
        if timeout is not None:  # `lsq up -d [--timeout N]`
            # Start-up makes many objects and frees few: the cyclic garbage
            # collector would walk them again and again, about a tenth of
            # the CPU of loading the manifest and the runtime. The runtime
            # forked from here turns it back on once start-up is over.
            gc.disable()
            up_detached(timeout)  # without click, if it can (lsq.cli._early)
            gc.enable()
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
