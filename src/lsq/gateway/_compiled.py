"""Which build of the gateway's hot path runs: compiled or source.

The modules named in `COMPILED` may also exist as extension modules compiled
from them (see setup.py), which Python imports in their place. They are one
unit: the compiled `_proxy` reaches into the C types of `_balance`, `_policy`
and `_stats` directly (a build of one against another's older layout would
crash), so either all of them run compiled, from one build, or none does.
Each build carries `COMPILED_FROM`, the digest of every `.py` and `.pxd` of
the unit as they were when it was made.

`select()` decides once per process, when the `lsq.gateway` package is first
imported and before anything else imports these modules. It imports the
compiled modules in order and runs the source instead when
`LSQ_GATEWAY_BUILD=source` is set, when only part of the unit was compiled,
when a module's digest differs from the sources' (edited after the build, or
a module left over from an older build) or its import fails, and when the
sources are there but cannot be checked (a `.pxd` is missing). The source is
then put in place by a finder at the front of `sys.meta_path`, so that every
later import of these modules gets the source. An install without the
sources runs the build. A worker started with exec is told so through its
environment (`worker_env`); `os.environ` is left alone, as the services'
environments are made from it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

ENV = "LSQ_GATEWAY_BUILD"
from_source = False  # `select()` chose the source in this process
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
    (or there is no build, and the source runs anyway). May leave the
    compiled modules imported; `select()` drops them if it says no."""
    built = [name for name in COMPILED if _built(folder, name)]
    if not built:
        return None
    missing_py = [f"{n}.py" for n in COMPILED if not (folder / f"{n}.py").exists()]
    if os.environ.get(ENV) == "source" and not missing_py:
        return f"{ENV}=source"
    if len(built) < len(COMPILED):
        missing = ", ".join(n for n in COMPILED if n not in built)
        return f"only part of it was compiled ({missing} missing); scripts/setup rebuilds it"
    if missing_py:
        return None  # installed without its source: the build is all there is
    missing_pxd = [f"{n}.pxd" for n in COMPILED if not (folder / f"{n}.pxd").exists()]
    if missing_pxd:
        return f"the build cannot be checked: {', '.join(missing_pxd)} missing in {folder}"
    digest = source_digest(folder)
    for name in COMPILED:
        try:
            with warnings.catch_warnings():
                # Cython warns when a C type it reaches into has another
                # size than it was built against: a left-over module.
                warnings.simplefilter("error", RuntimeWarning)
                module = importlib.import_module(f"{PACKAGE}.{name}")
        except Exception as exc:  # noqa: BLE001 - any failure: run the source
            return f"its {name} module does not load ({exc}); scripts/setup rebuilds it"
        if module.__dict__.get("COMPILED_FROM") != digest:
            return (
                f"{name} was compiled from other sources than those in {folder} "
                "(edited since, or left from an older build); scripts/setup rebuilds it"
            )
    return None


class _SourceFinder:
    """Finds the source of the compiled unit's modules before the build (a
    meta path finder; importlib.abc is not imported for it, to keep the
    package's import light)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != PACKAGE or name not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(fullname, self.folder / f"{name}.py")

    def invalidate_caches(self) -> None:
        pass


def select(folder: Path) -> None:
    """Called by the package's __init__: make the source run if it must."""
    reason = stale_reason(folder)
    if reason is None:
        return
    # Drop any compiled module the check loaded, from the package too.
    package = sys.modules.get(PACKAGE)
    for name in COMPILED:
        sys.modules.pop(f"{PACKAGE}.{name}", None)
        if package is not None:
            package.__dict__.pop(name, None)
    global from_source
    from_source = True
    if reason != f"{ENV}=source":
        print(f"lsq: warning: running the gateway from source: {reason}", file=sys.stderr)
    sys.meta_path.insert(0, _SourceFinder(folder))


def worker_env() -> dict[str, str] | None:
    """The environment of a gateway worker started with exec: the source
    again, with no second warning, if this process runs it. Not put in
    `os.environ`, which every service's environment is made from."""
    return {**os.environ, ENV: "source"} if from_source else None
