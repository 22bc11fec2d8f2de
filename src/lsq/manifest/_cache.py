"""The checked-manifest cache: `.lsq/manifest.cache`.

`lsq up` writes the `AppConfig` it loaded there, and the next `lsq up -d`
starts from it when nothing it was made from has changed: the same manifest
and override files, the same `.env` files (compared by content, through the
paths the manifest names), the same values (or absence) of each environment
variable loading read (`${VAR}` in the manifest and `.env` files, and PATH),
every command's program still found and executable (the loader would warn
otherwise), the same Python and the same LSQ code. Other variables may change
(a shell's OLDPWD does at every `cd`): what the app was loaded into does not
depend on them, and services get the environment of the runtime's start, not
a cached one. Loading a manifest costs the schema's import
and the YAML parse, about 0.1 s of CPU, while the services it is about to
start need every core; checking the cache costs a few file reads and hashes.

The file is one JSON line (what to compare, readable without importing the
schema) and a pickle of the `AppConfig` with its manifest frozen
(`lsq.manifest._frozen`), which only the runtime loads, without pydantic.
It is written with mode 0600, as it holds the services' environment. A
manifest that loaded with warnings is not cached, so that they are shown on
every `lsq up`. Only LSQ writes the file: it lives in the app's own `.lsq/`,
which already holds the control API's token.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lsq.manifest._config import AppConfig

CACHE_NAME = "manifest.cache"
_FORMAT = 1


def _environ_digest(names: Sequence[str]) -> str:
    """What the variables `names` are now (set to what, or unset)."""
    parts = [f"{k}={os.environ[k]}" if k in os.environ else f"{k}\x01" for k in sorted(names)]
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def _code_stamp() -> str:
    """Python's version and the size and time of each of the loader's files:
    a changed LSQ never starts from an object an older one pickled."""
    folder = Path(__file__).parent
    files = [folder / n for n in sorted(os.listdir(folder)) if n.endswith(".py")]
    parts = [sys.version, str(_FORMAT)]
    for file in [*files, folder.parent / "errors.py"]:
        st = os.stat(file)
        parts.append(f"{file.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def source_digest(text: str) -> str:
    """What the cache compares a manifest, override or `.env` file by."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def missing_program(program: str, cwd: Path, path: str) -> tuple[str, str] | None:
    """Why `program` cannot run from `cwd` with `path` as PATH, and the fix;
    None if it can. The loader warns with it; the cache is used only while
    every program it found is still there."""
    if "/" not in program:
        import shutil  # here: a manifest may name every program by its path

        if shutil.which(program, path=path) is None:
            return (
                f"program {program!r} not found on PATH",
                "install it or give its path",
            )
        return None
    file = (cwd / program).resolve()
    if not file.is_file():
        return (
            f"program {program!r} not found (looked for {file})",
            "check the path; a relative one starts at the service's cwd",
        )
    if not os.access(file, os.X_OK):
        return (
            f"program {program!r} is not executable",
            f"run chmod +x {program}, or run it through its interpreter",
        )
    return None


def _digest_of(path: str) -> str | None:
    try:
        return source_digest(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


def save(app: AppConfig, state_dir: Path) -> None:
    """Write `app` as the cache of its manifest, or remove a stale cache
    when `app` had warnings. Never fails the caller: a cache that cannot
    be written only means the next start loads the manifest again."""
    import pickle

    path = state_dir / CACHE_NAME
    try:
        if app.warnings or not app.sources:
            path.unlink(missing_ok=True)
            return
        header = {
            "code": _code_stamp(),
            "environ_read": list(app.environ_read),
            "environ": _environ_digest(app.environ_read),
            "manifest": str(app.path),
            "overrides": [str(p) for p in app.overrides],
            "sources": app.sources,
            "programs": [list(p) for p in app.programs],
            "ingress_port": app.manifest.gateway.ingress_port,
            "name": app.name,
        }
        # Frozen: the runtime that unpickles it need not import pydantic.
        frozen = pickle.dumps(app.frozen(), pickle.HIGHEST_PROTOCOL)
        data = json.dumps(header).encode() + b"\n" + frozen
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(CACHE_NAME + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(tmp, path)
    except (OSError, pickle.PicklingError, TypeError, ValueError):
        return


@dataclass(frozen=True)
class Hit:
    """A cache entry that matches the files and environment of now."""

    name: str
    manifest: Path
    payload: bytes
    ingress_port: int | None = None

    def app(self) -> AppConfig:
        """The cached app; loaded from the manifest again if the pickle is
        unreadable (it was checked to be current, so that is a damaged file)."""
        import pickle

        try:
            app: AppConfig = pickle.loads(self.payload)
        except Exception:  # any unpickling failure: fall back to the manifest
            from lsq.manifest._load import load

            return load(self.manifest)
        return app


def _read(state_dir: Path) -> tuple[dict[str, Any], bytes, bytes] | None:
    """The cache's header (parsed), its header line and its payload."""
    try:
        with open(state_dir / CACHE_NAME, "rb") as file:
            data = file.read()
        line, _, payload = data.partition(b"\n")
        header = json.loads(line)
    except (OSError, ValueError):
        return None
    return (header, line, payload) if isinstance(header, dict) else None


def header(state_dir: Path) -> tuple[dict[str, Any], str] | None:
    """The cache's header and a digest of it (what a warm-start plan is tied to)."""
    found = _read(state_dir)
    return None if found is None else (found[0], hashlib.sha256(found[1]).hexdigest())


def lookup(manifest: Path, state_dir: Path) -> Hit | None:
    """The cached app of `manifest` (no override files) if still current."""
    found = _read(state_dir)
    if found is None or not found[2]:
        return None
    header, _, payload = found
    names = header.get("environ_read")
    if (
        header.get("manifest") != str(manifest)
        or header.get("overrides") != []
        or header.get("code") != _code_stamp()
        or not isinstance(names, list) or not all(isinstance(n, str) for n in names)
        or header.get("environ") != _environ_digest(names)
    ):
        return None
    sources = header.get("sources")
    if not isinstance(sources, dict) or str(manifest) not in sources:
        return None
    for path, digest in sources.items():
        if _digest_of(path) != digest:
            return None
    # A program found then and gone (or no longer executable) now: the full
    # load warns about it, so take that path.
    for program, cwd, search in header.get("programs", []):
        if missing_program(program, Path(cwd), search) is not None:
            return None
    ingress = header.get("ingress_port")
    return Hit(str(header.get("name", "")), manifest, payload,
               ingress if isinstance(ingress, int) else None)
