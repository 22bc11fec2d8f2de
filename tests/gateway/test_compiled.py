"""The compiled build of the gateway's hot path (setup.py, the .pxd files).

The HTTP tests in test_proxy.py run against both builds (see conftest.py);
these check the build itself: that set-up made it, that each .pxd declares
what its source sets, and that an edited source is never shadowed by a build
made from an older one.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httptools
import pytest

import lsq
from lsq.gateway import _compiled

PACKAGE = Path(lsq.__file__).parent
GATEWAY = PACKAGE / "gateway"
# The classes each compiled module makes C types of.
CLASSES = {
    "_proxy": ("ContextBase", "Request", "ClientConn", "Upstream"),
    "_balance": ("BackendState", "ServiceState"),
    "_policy": ("Policy", "RetryBudget"),
    "_stats": ("Counters",),
}


def _import_unit(
    pythonpath: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Import the compiled unit's modules in a child; print each one's file."""
    code = (
        "import importlib; "
        + "".join(f"print(importlib.import_module('lsq.gateway.{n}').__file__); " for n in _compiled.COMPILED)
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(pythonpath), **(env or {})},
        timeout=60,
    )


def test_setup_compiled_the_hot_path() -> None:
    import importlib

    assert set(CLASSES) == set(_compiled.COMPILED)
    digest = _compiled.source_digest(GATEWAY)
    for name, classes in CLASSES.items():
        module = importlib.import_module(f"lsq.gateway.{name}")
        assert _compiled.is_compiled(module), (
            f"{module.__file__}: the gateway runs from source; scripts/setup compiles it "
            "(needs gcc and the Python headers)"
        )
        assert module.COMPILED_FROM == digest, name
        for cls in classes:
            kind = getattr(module, cls)
            assert type(kind).__name__ == "type"
            assert "__dict__" not in dir(kind), f"{name}.{cls} is a Python class, not a C type"
    # The proxy's typed fields hold the other modules' C types.
    from lsq.gateway._balance import BackendState
    from lsq.gateway._proxy import Request

    req = Request()
    with pytest.raises(TypeError):
        req.backend = object()  # type: ignore[assignment]
    req.backend = BackendState("a-0", "127.0.0.1", 1, 100)


def _set_attributes(source: str, classes: tuple[str, ...]) -> dict[str, set[str]]:
    """Per class, every `self.NAME` the source assigns (for Request also the
    fields of `_REQUEST_DEFAULTS`, which the source build puts on the class)."""
    found: dict[str, set[str]] = {}
    for node in ast.parse(source).body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "_REQUEST_DEFAULTS"
        ):
            assert isinstance(node.value, ast.Dict)
            keys = {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
            found.setdefault("Request", set()).update(keys)
        if isinstance(node, ast.ClassDef) and node.name in classes:
            names = found.setdefault(node.name, set())
            for sub in ast.walk(node):
                targets: list[ast.expr] = []
                if isinstance(sub, ast.Assign):
                    targets = list(sub.targets)
                elif isinstance(sub, (ast.AnnAssign, ast.AugAssign)):
                    targets = [sub.target]
                for target in targets:
                    for t in ast.walk(target):
                        if (
                            isinstance(t, ast.Attribute)
                            and isinstance(t.value, ast.Name)
                            and t.value.id == "self"
                        ):
                            names.add(t.attr)
    return found


def _slots(source: str, classes: tuple[str, ...]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name in classes:
            for item in node.body:
                if (
                    isinstance(item, ast.Assign)
                    and isinstance(item.targets[0], ast.Name)
                    and item.targets[0].id == "__slots__"
                ):
                    found[node.name] = set(ast.literal_eval(item.value))
    return found


def _declared(pxd: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    current = None
    for line in pxd.splitlines():
        m = re.match(r"cdef class (\w+):", line)
        if m:
            current = found.setdefault(m.group(1), set())
            continue
        m = re.match(r"    cdef public \w+ (\w+)$", line)
        if m and current is not None:
            current.add(m.group(1))
    return found


@pytest.mark.parametrize("module", sorted(CLASSES))
def test_the_pxd_declares_what_the_source_sets(module: str) -> None:
    classes = CLASSES[module]
    source = (GATEWAY / f"{module}.py").read_text()
    set_ = _set_attributes(source, classes)
    declared = _declared((GATEWAY / f"{module}.pxd").read_text())
    assert set(set_) == set(classes) == set(declared)
    for name in classes:
        assert set_[name] == declared[name], (
            f"{name}: set but not declared {sorted(set_[name] - declared[name])}, "
            f"declared but never set {sorted(declared[name] - set_[name])}"
        )
    for name, slots in _slots(source, classes).items():
        assert slots == declared[name], f"{name}: __slots__ and the .pxd differ"


def test_an_edited_source_is_not_shadowed_by_an_old_build(tmp_path: Path) -> None:
    from lsq.gateway import _proxy

    if not _compiled.is_compiled(_proxy):
        raise AssertionError("no compiled build to test (see test_setup_compiled_the_hot_path)")
    names = _compiled.COMPILED

    def fresh_copy(root: Path) -> Path:
        copy = root / "lsq"
        shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "templates"))
        return copy / "gateway"

    def sources(folder: Path) -> list[str]:
        return [str(folder / f"{n}.py") for n in names]

    gateway = fresh_copy(tmp_path / "same")
    same = _import_unit(tmp_path / "same")
    assert same.returncode == 0, same.stderr
    built = [str(gateway / Path(sys.modules[f"lsq.gateway.{n}"].__file__ or "").name) for n in names]
    assert same.stdout.split() == built
    assert all(not f.endswith(".py") for f in built)
    assert same.stderr == ""

    forced = _import_unit(tmp_path / "same", {"LSQ_GATEWAY_BUILD": "source"})
    assert forced.stdout.split() == sources(gateway)
    assert forced.stderr == ""

    # An edit to any one source, the first (whose build is loaded to read
    # the digest) or another, puts the whole unit on its source.
    for edited_name in (names[0], "_balance"):
        root = tmp_path / f"edited{edited_name}"
        gateway = fresh_copy(root)
        edited = gateway / f"{edited_name}.py"
        edited.write_text(edited.read_text() + "\nEDITED = True\n")
        run = _import_unit(root)
        assert run.returncode == 0, run.stderr
        assert run.stdout.split() == sources(gateway), edited_name
        assert "running the gateway from source" in run.stderr
        assert "compiled from other sources" in run.stderr

    # The choice reaches a worker started with exec, not the services: they
    # get their environment from the runtime's (a first start's early starts
    # would no longer match the replicas' own environment).
    code = ("import os; from lsq.gateway import _compiled; "
            "print(os.environ.get('LSQ_GATEWAY_BUILD'), _compiled.worker_env()['LSQ_GATEWAY_BUILD'])")
    seen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)})
    assert seen.stdout.split() == ["None", "source"], seen.stderr

    # A build missing one module (its compile failed) is not used at all.
    root = tmp_path / "partial"
    gateway = fresh_copy(root)
    for so in gateway.glob("_balance.*.so"):
        so.unlink()
    partial = _import_unit(root)
    assert partial.returncode == 0, partial.stderr
    assert partial.stdout.split() == sources(gateway)
    assert "only part of it was compiled (_balance missing)" in partial.stderr

    # A module left from an older build beside a newer build of the others
    # (its compile failed, so the old one stayed): never loaded with them,
    # whose C types it would read with the old layout.
    root = tmp_path / "leftover"
    gateway = fresh_copy(root)
    (old,) = gateway.glob("_proxy.*.so")
    _tiny_extension(tmp_path / "old", "_proxy", old.name)
    old.unlink()
    shutil.copy(tmp_path / "old" / old.name, old)
    leftover = _import_unit(root)
    assert leftover.returncode == 0, leftover.stderr
    assert leftover.stdout.split() == sources(gateway)
    assert "_proxy was compiled from other sources" in leftover.stderr
    assert leftover.stderr.count("warning") == 1

    # Sources that cannot be checked (a .pxd is gone): the source runs, and
    # the package's attribute is the source module too.
    root = tmp_path / "nopxd"
    gateway = fresh_copy(root)
    (gateway / "_stats.pxd").unlink()
    code = (
        "import lsq.gateway._proxy; from lsq.gateway import _stats; "
        "import lsq.gateway._stats as s; print(_stats.__file__, _stats is s)"
    )
    nopxd = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
    )
    assert nopxd.returncode == 0, nopxd.stderr
    assert nopxd.stdout.split() == [str(gateway / "_stats.py"), "True"]
    assert "_stats.pxd missing" in nopxd.stderr


def _tiny_extension(folder: Path, name: str, filename: str) -> None:
    """A C extension module `name` whose COMPILED_FROM is not the sources'
    digest: what a module of an older build looks like to the check."""
    import sysconfig

    folder.mkdir(parents=True)
    source = folder / f"{name}.c"
    source.write_text(
        "#include <Python.h>\n"
        f'static struct PyModuleDef m = {{PyModuleDef_HEAD_INIT, "{name}", NULL, -1, NULL}};\n'
        f"PyMODINIT_FUNC PyInit_{name}(void) {{\n"
        "  PyObject *mod = PyModule_Create(&m);\n"
        '  if (mod) PyModule_AddStringConstant(mod, "COMPILED_FROM", "an older build");\n'
        "  return mod;\n}\n"
    )
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-I", sysconfig.get_paths()["include"],
         str(source), "-o", str(folder / filename)],
        check=True, timeout=120,
    )


def _source_module():
    """The Python source of _proxy, loaded beside the compiled build."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("lsq_proxy_source", GATEWAY / "_proxy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Header names near the ones the fast path reads: equal, longer, shorter,
# prefixed, and names that share a first letter with them.
_NAMES = [
    "host", "hostx", "hos", "content-length", "content-lengthx", "content-type",
    "connection", "x-lsq-deadline", "x-lsq-deadlines", "x-forwarded-for",
    "x-forwarded-", "x-forwarded", "x-forwardedfor", "x-f", "x-l", "x-bench-1", "x",
    "traceparent", "tracestate", "idempotency-key", "transfer-encoding", "upgrade",
    "expect", "keep-alive", "te", "teapot", "t", "trailer", "forwarded",
    "forwarded-x", "proxy-", "proxy-authorization", "proxy", "retry-after",
    "retry", "server", "date", "accept", "cookie", "p", "k", "e", "u",
]
_VALUES = [
    "", "a", " a", "\ta b ", "  ", "x:y", "1:2:3", "close", " keep-alive ", "é",
    "Keep-Alive", "CLOSE", "Shop.LOCALHOST:8080",
]


def _expected(pattern: re.Pattern[bytes], head: bytes) -> list[tuple[bytes, bytes]]:
    """The regular expression's names, each with its value as `head` has it."""
    return [(m.group(1), head[m.start(2) : m.end(2)]) for m in pattern.finditer(head.lower())]


def test_the_compiled_scan_finds_what_the_regular_expressions_find() -> None:
    import random

    from lsq.gateway import _proxy

    source = _source_module()
    rng = random.Random(7)
    heads = [b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n"]
    for _ in range(3000):
        lines = [rng.choice(["GET /a HTTP/1.1", "HTTP/1.1 200 OK", "POST /x:y HTTP/1.1"])]
        for _ in range(rng.randrange(0, 12)):
            name = rng.choice(_NAMES)
            if rng.random() < 0.3:
                name = name.upper() if rng.random() < 0.5 else name.title()
            sep = rng.choice([":", ": ", ":\t", ":  \t "])
            lines.append(name + sep + rng.choice(_VALUES))
        head = "\r\n".join(lines) + "\r\n\r\n"
        if rng.random() < 0.1:  # a bare CR somewhere in the head
            at = rng.randrange(len(head) - 2)
            head = head[:at] + "\r" + head[at:]
        heads.append(head.encode())
    compared = 0
    for head in heads:
        lower = head.lower()
        # The scan runs only on heads httptools accepted (the gateway checks
        # the syntax first), and httptools refuses a bare CR after the start.
        parser = (
            httptools.HttpResponseParser if head.startswith(b"HTTP/") else httptools.HttpRequestParser
        )
        try:
            parser(source._SYNTAX).feed_data(head)
        except httptools.HttpParserError:
            continue
        assert lower.lstrip(b"\r").count(b"\r") == lower.count(b"\r\n"), head
        compared += 1
        want_request = _expected(source._REQUEST_FIELDS.__self__, head)
        want_response = _expected(source._RESPONSE_FIELDS.__self__, head)
        for module in (source, _proxy):
            assert module._scan_fields(head, False) == want_request, head
            assert module._scan_fields(head, True) == want_response, head
    assert compared > 1000, compared


def test_the_compiled_helpers_match_what_the_source_calls() -> None:
    """The compiled build's helpers against what they stand for: the byte
    search against bytes.find (which the source calls in its place), the
    histogram bucket against bisect, the others against slicing, int() and
    the Connection values the fast path takes."""
    import bisect
    import random

    from lsq.gateway import _proxy
    from lsq.gateway._stats import BUCKETS

    rng = random.Random(11)
    for module in (_source_module(), _proxy):
        for _ in range(2000):
            data = bytes(rng.choice(b"ab \r\n") for _ in range(rng.randrange(0, 20)))
            start = rng.randrange(0, len(data) + 1)
            stop = rng.randrange(start, len(data) + 1)
            for byte in (13, 32, 0x61):
                assert module._find_byte(data, byte, start, stop) == data.find(
                    bytes([byte]), start, stop
                ), (data, byte, start, stop)
            if data:
                n = rng.randrange(1, len(data) + 1)
                assert module._chop(data, n) == data[:-n]
        for value in (b"", b"0", b"2", b"007", b"12345678901234567", b"1" * 18, b"1" * 19,
                      b"-1", b"+1", b" 1", b"1 ", b"1a", b"\xd9\xa3", b"1_000"):
            want = int(value) if value.isdigit() and len(value) <= 18 else -1
            assert module._length(value) == want, value
        for value, kept in ((b"keep-alive", 1), (b"Keep-Alive \t", 1), (b"CLOSE", 0),
                            (b"close ", 0), (b"upgrade", -1), (b"", -1), (b"keep-alive, te", -1)):
            assert module._keeps(value) == kept, value
        values = [0.0, 1e-9, 1e9, *BUCKETS, *(b * (1 + 1e-12) for b in BUCKETS)]
        values += [rng.uniform(0, 200) for _ in range(2000)]
        values += [rng.lognormvariate(0, 4) for _ in range(2000)]
        for ms in values:
            assert module._bucket(ms) == min(bisect.bisect_left(BUCKETS, ms), len(BUCKETS) - 1), ms


@pytest.mark.slow
def test_without_a_compiler_the_package_installs_and_runs_the_source(tmp_path: Path) -> None:
    """A machine without gcc still gets a working wheel: source only, with
    the .pxd shipped so that a later build can be checked against it."""
    import zipfile

    root = PACKAGE.parents[1]
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(root / name, project / name)
    shutil.copytree(
        root / "src",
        project / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info"),
    )
    out = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(project)],
        capture_output=True,
        text=True,
        env={**os.environ, "CC": "/bin/false"},
        timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = out.glob("lsq-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for module in _compiled.COMPILED:
        assert f"lsq/gateway/{module}.py" in names
        assert f"lsq/gateway/{module}.pxd" in names
    assert not [n for n in names if n.endswith(".so")], names
