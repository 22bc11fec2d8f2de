"""`lsq up -d` from the checked-manifest cache, before the CLI loads.

When the command line is `lsq up -d` (with `--timeout N` or not) and `.lsq/manifest.cache`
matches the files and environment of now (`lsq.manifest._cache`), the
runtime is forked at once and unpickles the app, while this process
reports start-up with `lsq.cli._report`, never loading click. The usual
path would first load click, the schema and the YAML parser and parse the
manifest: about 0.1 s of CPU that the services being started need.
Anything else (another command line, no cache, a changed file, a runtime
already running) takes the usual path, which also reports what is wrong.

Only the standard library and LSQ's light modules are imported here.
"""

from __future__ import annotations

from pathlib import Path


def detached_timeout(args: list[str]) -> float | None:
    """For the arguments after `up`: 0.0 for `-d` alone, N for `-d` with
    `--timeout N` (either order); None for anything else (the usual path)."""
    detach, timeout, rest = False, 0.0, list(args)
    while rest:
        arg = rest.pop(0)
        if arg in ("-d", "--detach") and not detach:
            detach = True
        elif arg == "--timeout" and rest:
            value = rest.pop(0)
        elif arg.startswith("--timeout="):
            value = arg.split("=", 1)[1]
        else:
            return None
        if arg.startswith("--timeout"):
            try:
                timeout = float(value)
            except ValueError:
                return None  # click says what is wrong with it
            if not timeout > 0:
                return None
    return timeout if detach else None


def up_detached(timeout: float = 0.0) -> None:
    """`lsq up -d`, if the cache allows: fork the runtime, report its
    start-up, exit. Returns (having started nothing) if it does not.
    `timeout` 0 means the default wait."""
    forked = _fork_from_cache()
    if forked is None:
        return
    import os
    import signal
    import sys

    from lsq._signals import STOP_SIGNALS
    from lsq.cli._report import follow_detached
    from lsq.errors import LsqError

    code = 0
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        follow_detached(*forked, timeout or None)
    except LsqError as exc:  # reported as the CLI reports it (lsq.cli._main)
        sys.stderr.write(f"lsq: error: {exc}\n")
        code = exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("lsq: aborted\n")
        code = 128 + signal.SIGINT
    except BrokenPipeError:
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or 1
    os._exit(code)  # as `up -d` does: nothing is left to tear down


def _fork_from_cache() -> tuple[str, Path, int, int, int] | None:
    """(app name, state folder, runtime pid, report pipe, log offset) of the
    runtime forked from the cache, or None."""
    from lsq.errors import LsqError
    from lsq.manifest._cache import lookup
    from lsq.manifest._find import find_manifest
    from lsq.runtime._info import read_runtime_info

    try:
        manifest = find_manifest(Path.cwd())
    except (LsqError, OSError):
        return None
    state = manifest.parent / ".lsq"
    if read_runtime_info(state) is not None:
        return None
    hit = lookup(manifest, state)
    if hit is None:
        return None
    if hit.ingress_port is not None:
        from lsq.runtime._ports import port_in_use

        if port_in_use(hit.ingress_port):
            return None  # the usual path reports it, before any start
    from lsq.cli._daemon import start_detached

    pid, read_fd, log_start = start_detached(hit.app, state, [])
    return (hit.name, state, pid, read_fd, log_start)
