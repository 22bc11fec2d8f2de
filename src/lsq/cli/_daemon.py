"""Entry point of a detached runtime (`lsq up -d`): `python -m lsq.cli._daemon FILE [SERVICE...]`.

Its stdout and stderr go to `.lsq/runtime.log`; service output goes only to the
per-service log files, so the runtime log holds LSQ's own notes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lsq.errors import LsqError


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
