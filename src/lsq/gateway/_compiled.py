"""Which build of the gateway's hot path runs: compiled or source.

The modules named in `COMPILED` may also exist as extension modules compiled
from them (see setup.py), which Python imports in their place. They are one
unit: the compiled `_proxy` reaches into the C types of `_balance`, `_policy`
and `_stats` directly, so either all of them run compiled or none does. Each
build carries `COMPILED_FROM`, the digest of every `.py` and `.pxd` of the
unit as they were when it was made.

`select()` decides once per process, when the `lsq.gateway` package is first
imported and before any of these modules is: it runs the source when
`LSQ_GATEWAY_BUILD=source` is set, when the sources no longer match the build
(edited after it was made), or when only part of the unit was compiled. The
source is then put in place by a finder at the front of `sys.meta_path`, so
that every later import of these modules gets the source.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

ENV = "LSQ_GATEWAY_BUILD"
# Compiled by setup.py, in this order (each cimports only those before it).
COMPILED = ("_stats", "_policy", "_balance", "_proxy")
PACKAGE = "lsq.gateway"


def source_digest(folder: Path, names: Sequence[str] = COMPILED) -> str:
    """The digest setup.py writes into each compiled module (setup.py calls
    this function; it loads this file by path)."""
    h = hashlib.sha256()
    for name in names:
        for suffix in (".py", ".pxd"):
            h.update(f"{name}{suffix}\0".encode())
            h.update((folder / f"{name}{suffix}").read_bytes())
            h.update(b"\0")
    return h.hexdigest()


def is_compiled(module: ModuleType) -> bool:
    return not (module.__file__ or "").endswith(".py")


def _built(folder: Path, name: str) -> bool:
    return any(
        (folder / f"{name}{suffix}").exists()
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
    )


def stale_reason(folder: Path) -> str | None:
    """Why the compiled unit must give way to its source; None: it may run
    (or there is no build, and the source runs anyway)."""
    built = [name for name in COMPILED if _built(folder, name)]
    if not built:
        return None
    if os.environ.get(ENV) == "source":
        return f"{ENV}=source"
    if len(built) < len(COMPILED):
        missing = ", ".join(n for n in COMPILED if n not in built)
        return f"only part of it was compiled ({missing} missing); scripts/setup rebuilds it"
    if not all((folder / f"{n}{s}").exists() for n in COMPILED for s in (".py", ".pxd")):
        return None  # installed without its source: the build is all there is
    # The first module imports nothing of the unit: loading it to read its
    # digest is safe, and it is dropped again if the source is to run.
    first = f"{PACKAGE}.{COMPILED[0]}"
    module = importlib.import_module(first)
    if module.__dict__.get("COMPILED_FROM") != source_digest(folder):
        sys.modules.pop(first, None)
        return (
            f"a source in {folder} changed after it was compiled; "
            "scripts/setup rebuilds it"
        )
    return None


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Finds the source of the compiled unit's modules before the build."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != PACKAGE or name not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(fullname, self.folder / f"{name}.py")


def select(folder: Path) -> None:
    """Called by the package's __init__: make the source run if it must."""
    reason = stale_reason(folder)
    if reason is None:
        return
    if reason != f"{ENV}=source":
        print(f"lsq: warning: running the gateway from source: {reason}", file=sys.stderr)
        # The gateway's worker processes inherit this: one warning, not one each.
        os.environ[ENV] = "source"
    sys.meta_path.insert(0, _SourceFinder(folder))
