"""The compiled build of the gateway's hot path; everything else is in
pyproject.toml.

`src/lsq/gateway/_proxy.py` and the modules whose state it touches per
request (`_balance`, `_policy`, `_stats`) are plain Python. With Cython and a
C compiler at hand, each is also compiled, typed by its `.pxd`, into an
extension module of the same name, which Python then imports in place of the
source. In the copies that get compiled, `COMPILED_FROM` holds the digest of
all their .py and .pxd files, so that an edited source is never shadowed by
an old build (see lsq/gateway/_compiled.py, which also names the modules).
Without Cython or a compiler the package installs without them and runs the
source.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from types import ModuleType

from setuptools import setup

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "src" / "lsq" / "gateway"
STAGE = HERE / "build" / "cython"


def _compiled() -> ModuleType:
    """lsq.gateway._compiled, read from the source tree (the package is not
    importable while it is being built; that module needs only the standard
    library)."""
    spec = importlib.util.spec_from_file_location("_lsq_compiled", PACKAGE / "_compiled.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def extensions() -> list:
    if os.environ.get("LSQ_NO_COMPILE"):
        return []
    try:
        from Cython.Build import cythonize
        from setuptools import Extension
    except ImportError:
        return []
    # Stage copies under build/ so that the generated C stays out of src/.
    gateway = STAGE / "lsq" / "gateway"
    gateway.mkdir(parents=True, exist_ok=True)
    for init in (STAGE / "lsq" / "__init__.py", gateway / "__init__.py"):
        init.touch()
    compiled = _compiled()
    names = compiled.COMPILED
    missing = [f"{n}.pxd" for n in names if not (PACKAGE / f"{n}.pxd").exists()]
    if missing:
        print(f"lsq: not compiling the gateway's hot path: {', '.join(missing)} missing")
        return []
    digest = compiled.source_digest(PACKAGE, names)
    placeholder = "COMPILED_FROM: str | None = None\n"
    exts = []
    for name in names:
        py, pxd = PACKAGE / f"{name}.py", PACKAGE / f"{name}.pxd"
        staged = gateway / f"{name}.py"
        text = py.read_text()
        if text.count(placeholder) != 1:
            raise SystemExit(f"{py}: expected one line {placeholder!r}")
        text = text.replace(placeholder, f'COMPILED_FROM: str | None = "{digest}"\n')
        if not staged.exists() or staged.read_text() != text:
            staged.write_text(text)
        if not (gateway / pxd.name).exists() or (gateway / pxd.name).read_bytes() != pxd.read_bytes():
            shutil.copyfile(pxd, gateway / pxd.name)
        exts.append(Extension(f"lsq.gateway.{name}", [str(staged.relative_to(HERE))]))
    try:
        built = cythonize(
            exts,
            compiler_directives={"language_level": 3, "annotation_typing": False},
            quiet=True,
        )
    except Exception as exc:  # noqa: BLE001 - any failure: install the source only
        print(f"lsq: not compiling the gateway's hot path: {exc}")
        return []
    # Set on what cythonize returns: it makes new Extensions without them.
    for ext in built:
        ext.optional = True  # no compiler: install anyway and run the source
        # Without debug info and at -O2: half the compile time of Python's
        # default -O3 -g, at the same speed here.
        ext.extra_compile_args = ["-O2", "-g0"]
    return built


setup(ext_modules=extensions())
