"""The compiled build of the gateway's hot path; everything else is in
pyproject.toml.

`src/lsq/gateway/_proxy.py` is plain Python. With Cython and a C compiler at
hand, it is also compiled, typed by `_proxy.pxd`, into an extension module of
the same name, which Python then imports in place of the source. In the copy
that gets compiled, `COMPILED_FROM` holds the digest of the .py and .pxd
it was made from, so that an edited source is never shadowed by an old build
(see lsq/gateway/_compiled.py). Without Cython or a compiler the package
installs without it and runs the source.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "src" / "lsq" / "gateway"
STAGE = HERE / "build" / "cython"
MODULES = ["_proxy"]


def _source_digest() -> Callable[[Path, Path], str]:
    """lsq.gateway._compiled.source_digest, read from the source tree (the
    package is not importable while it is being built; that module needs
    only the standard library)."""
    spec = importlib.util.spec_from_file_location("_lsq_compiled", PACKAGE / "_compiled.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.source_digest


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
    exts = []
    for name in MODULES:
        py, pxd = PACKAGE / f"{name}.py", PACKAGE / f"{name}.pxd"
        if not pxd.exists():
            print(f"lsq: not compiling {py.name}: {pxd.name} is missing")
            continue
        digest = _source_digest()(py, pxd)
        staged = gateway / f"{name}.py"
        placeholder = "COMPILED_FROM: str | None = None\n"
        text = py.read_text()
        if text.count(placeholder) != 1:
            raise SystemExit(f"{py}: expected one line {placeholder!r}")
        text = text.replace(placeholder, f'COMPILED_FROM: str | None = "{digest}"\n')
        if not staged.exists() or staged.read_text() != text:
            staged.write_text(text)
            shutil.copyfile(pxd, gateway / f"{name}.pxd")
        exts.append(
            Extension(
                f"lsq.gateway.{name}",
                [str(staged.relative_to(HERE))],
            )
        )
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
