"""Which build of the gateway's hot path runs: compiled or source.

`_proxy.py` may also exist as an extension module compiled from it (see
setup.py), which Python imports in its place. That build carries
`COMPILED_FROM`, the digest of the `_proxy.py` and `_proxy.pxd` it was made
from. When the source next to it no longer matches (it was edited after the
build), or when `LSQ_GATEWAY_BUILD=source` is set, the compiled module hands
its place in `sys.modules` to the source, so what runs is always what the
source says.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

ENV = "LSQ_GATEWAY_BUILD"


def source_digest(py: Path, pxd: Path) -> str:
    """The digest setup.py writes into the compiled build (setup.py calls
    this function; it loads this file by path)."""
    h = hashlib.sha256(py.read_bytes())
    h.update(b"\0")
    h.update(pxd.read_bytes())
    return h.hexdigest()


def is_compiled(module: ModuleType) -> bool:
    return not (module.__file__ or "").endswith(".py")


def stale_reason(module_file: str, compiled_from: str | None) -> str | None:
    """Why a compiled module must give way to its source; None: it may run."""
    if os.environ.get(ENV) == "source":
        return f"{ENV}=source"
    folder = Path(module_file).parent
    name = Path(module_file).name.split(".", 1)[0]
    py, pxd = folder / f"{name}.py", folder / f"{name}.pxd"
    if not (py.exists() and pxd.exists()):
        return None  # installed without its source: the build is all there is
    if compiled_from != source_digest(py, pxd):
        return (
            f"{py.name} or {pxd.name} in {folder} changed after it was compiled; "
            "scripts/setup rebuilds it"
        )
    return None


def use_source_if_stale(name: str, module_file: str, compiled_from: str | None) -> None:
    """Called at the end of a compiled module's import: swap in the source
    module when the build is stale or not wanted."""
    reason = stale_reason(module_file, compiled_from)
    if reason is None:
        return
    if reason != f"{ENV}=source":
        print(f"lsq: warning: running the gateway from source: {reason}", file=sys.stderr)
        # The gateway's worker processes inherit this: one warning, not one each.
        os.environ[ENV] = "source"
    source = Path(module_file).parent / (name.rsplit(".", 1)[1] + ".py")
    spec = importlib.util.spec_from_file_location(name, source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
