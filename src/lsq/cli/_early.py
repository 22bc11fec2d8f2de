"""`lsq up -d` before the CLI loads: click and the command modules are
never imported, as every millisecond before the first service starts adds
to the start-up.

When the command line is `lsq up -d` (with `--timeout N` or not) and
`.lsq/manifest.cache` matches the files and environment of now
(`lsq.manifest._cache`), the runtime is forked at once and unpickles the
app, while this process reports start-up with `lsq.cli._report`. The usual
path would first load the schema and the YAML parser and parse the
manifest: about 0.1 s of CPU that the services being started need.

Without a current cache (a first start, a changed file), the runtime is
forked first and loads its modules on the other core while this process
loads and checks the manifest, then hands the app over
(`lsq.cli._daemon.prestart`). Errors are reported as the usual path does.

Anything else (no manifest, a runtime already running, the ingress port
taken) takes the usual path, which reports what is wrong.

Only the standard library and LSQ's light modules are imported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lsq.manifest._cache import Hit


MAX_TIMEOUT = 1e6
"""Seconds: the longest `lsq up -d --timeout` (beyond it a deadline overflows)."""


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
            if not 0 < timeout <= MAX_TIMEOUT:
                return None  # the usual path says what is wrong with it
    return timeout if detach else None


def up_detached(timeout: float = 0.0) -> None:
    """`lsq up -d` without click: from the manifest cache if it is current,
    else by loading the manifest; report start-up, exit. Returns (having
    started nothing) when the usual path should run and report what is
    wrong. `timeout` 0 means the default wait."""
    plan = _plan()
    if plan is None:
        return
    import os
    import signal
    import sys

    from lsq._signals import STOP_SIGNALS
    from lsq.cli._report import follow_detached
    from lsq.errors import LsqError

    code = 0
    try:
        if isinstance(plan, Path):
            _load_and_start(plan, timeout or None)
        else:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            follow_detached(*_fork_from_cache(*plan), timeout or None)
    except LsqError as exc:  # reported as the CLI reports it (lsq.cli._main)
        sys.stderr.write(f"lsq: error: {exc}\n")
        code = exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("lsq: aborted\n")
        code = 128 + signal.SIGINT
    except BrokenPipeError:
        code = 1
    daemon = sys.modules.get("lsq.cli._daemon")
    if daemon is not None:
        daemon.abandon_prestart()  # not handed an app: the load failed or was stopped
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or 1
    os._exit(code)  # as `up -d` does: nothing is left to tear down


def _plan() -> tuple[Path, Hit] | Path | None:
    """(manifest, cache entry) to start from the cache; the manifest alone
    to load it; None when the usual path has something to report (no
    manifest, the app running already, the ingress port taken)."""
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
        return manifest
    if hit.ingress_port is not None:
        from lsq.runtime._ports import port_in_use

        if port_in_use(hit.ingress_port):
            return None  # the usual path reports it, before any start
    return manifest, hit


def _fork_from_cache(manifest: Path, hit: Hit) -> tuple[str, Path, int, int, int]:
    """(app name, state folder, runtime pid, report pipe, log offset) of the
    runtime forked to start from the cache."""
    from lsq.cli._daemon import start_detached

    state = manifest.parent / ".lsq"
    pid, read_fd, log_start = start_detached(hit.app, state, [])
    return (hit.name, state, pid, read_fd, log_start)


def _load_and_start(manifest: Path, timeout: float | None) -> None:
    """A first start: what `lsq up -d` does (`lsq.cli._commands.up`), with
    the runtime forked before the manifest loads (`prestart`)."""
    import signal
    import sys

    from lsq._signals import STOP_SIGNALS
    from lsq.cli._daemon import offer_plan, prestart

    prestart()  # with the stop signals still held, which it keeps
    from lsq.cli._up import check_startable, start_detached_and_follow
    from lsq.manifest._load import load

    # Modules are loaded: a Ctrl-C from here on aborts (KeyboardInterrupt).
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    app = load(manifest.resolve(), frozen=True)  # without pydantic, if it is valid
    for warning in app.warnings:
        sys.stderr.write(f"lsq: warning: {warning}\n")
    check_startable(app)
    offer_plan(app)  # the runtime starts what waits for nothing, while it loads
    start_detached_and_follow(app, [], timeout)
