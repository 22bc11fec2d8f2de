"""A detached runtime (`lsq up -d`): forked from the CLI by `fork_runtime`, or
started as `python -m lsq.cli._daemon FILE [--override=F] [SERVICE...]`.

Its stdout and stderr go to `.lsq/runtime.log`; service output goes only to the
per-service log files, so the runtime log holds LSQ's own notes.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

from lsq.errors import LsqError
from lsq.manifest import AppConfig


def fork_runtime(app: AppConfig, services: list[str], log: Path) -> int:
    """Fork a detached runtime for `app`; returns its pid in the parent.

    The child starts a new session, sends its output to `log`, runs the
    runtime until it is stopped, and never returns into the caller's code.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setsid()
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.chdir(app.root)
        code = _serve(app, services)
    except BaseException:  # the child must never unwind into the CLI
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _serve(app: AppConfig, services: list[str]) -> int:
    from lsq.cli._commands import _run_loop
    from lsq.control import serve
    from lsq.runtime import Printer

    try:
        return int(_run_loop(serve(app, services=services or None,
                                   printer=Printer(sys.stdout, notes_only=True))))
    except LsqError as exc:
        print(f"lsq: error: {exc}", flush=True)
        return exc.exit_code


def main() -> None:
    from lsq.cli._commands import _run_loop
    from lsq.control import serve
    from lsq.manifest import load
    from lsq.runtime import Printer

    path, *rest = sys.argv[1:]
    overrides = [Path(a.split("=", 1)[1]) for a in rest if a.startswith("--override=")]
    services = [a for a in rest if not a.startswith("--override=")]
    try:
        app = load(Path(path), overrides=overrides)
        code = _run_loop(serve(app, services=services or None, printer=Printer(sys.stdout, notes_only=True)))
    except LsqError as exc:
        print(f"lsq: error: {exc}", flush=True)
        sys.exit(exc.exit_code)
    sys.exit(code)


if __name__ == "__main__":
    main()
