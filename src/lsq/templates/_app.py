"""The app folder: `lsq init`, finding `lsq.yaml`, and adding a service to it.

The manifest is edited with ruamel.yaml's round-trip mode, so the developer's
comments, key order and quoting survive `lsq new`.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from lsq.errors import ManifestError, UsageError

MANIFEST = "lsq.yaml"
RESERVED = frozenset(
    {"lsq", "gateway", "dashboard", "runtime", "control", "ingress", "node-modules"}
)
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")

_MANIFEST_TEXT = """\
# {name}: the app LSQ runs. `lsq up` starts every service below, `lsq ps` lists them.
# `lsq new NAME --template python|node` generates a service and adds it below.
# A service entry looks like this:
#
#   api:
#     command: .venv/bin/python -m app   # run by /bin/sh -c in cwd
#     cwd: api                           # relative to this file
#     health: {{http: /health/ready}}      # healthy when this answers 2xx or 3xx
#     data: sqlite                       # LSQ gives DATABASE_URL
#     depends_on: [db]                   # started after db is healthy
name: {name}

services: {{}}
"""

_README_TEXT = """\
# {name}

An app run by LSQ from `lsq.yaml`.

1. Add a service: `lsq new api --template python` (or `--template node`).
2. Run the app: `lsq up`, then `lsq ps` for its addresses.
3. Stop it: `lsq down`.

`lsq templates` lists the templates; `lsq template status` tells which
services are behind their template, `lsq template update --all` updates them.
"""


def validate_name(name: str, *, what: str = "service name") -> None:
    """Refuse a name LSQ cannot use, with the rule in the message."""
    if not _NAME.match(name) or len(name) > 63:
        raise UsageError(
            f"{what} {name!r}: expected lowercase letters, digits and single dashes, "
            "starting with a letter (at most 63 characters), e.g. 'user-api'"
        )
    if name in RESERVED:
        raise UsageError(
            f"{what} {name!r} is reserved by LSQ; choose another, e.g. '{name}-svc'"
        )


def init_app(folder: Path, *, name: str | None = None) -> list[Path]:
    """Create an empty app in `folder`; return the files written."""
    folder = folder.resolve()
    manifest = folder / MANIFEST
    if manifest.exists():
        raise UsageError(f"{manifest} already exists; this folder is an app already")
    app_name = name or _default_name(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [manifest]
    manifest.write_text(_MANIFEST_TEXT.format(name=app_name))
    readme = folder / "README.md"
    if not readme.exists():
        readme.write_text(_README_TEXT.format(name=app_name))
        written.append(readme)
    written.append(_ensure_gitignore(folder))
    return written


def _default_name(folder: Path) -> str:
    cleaned = re.sub(r"[^a-z0-9]+", "-", folder.name.lower()).strip("-")
    return cleaned or "app"


def _ensure_gitignore(folder: Path) -> Path:
    path = folder / ".gitignore"
    lines = path.read_text().splitlines() if path.exists() else []
    if ".lsq/" not in lines and ".lsq" not in lines:
        lines.append(".lsq/")
        path.write_text("\n".join(lines) + "\n")
    return path


def find_manifest(file: Path | None, start: Path | None = None) -> Path:
    """`-f FILE`, or lsq.yaml in `start` (default: here) or its nearest parent."""
    if file is not None:
        if not file.is_file():
            raise UsageError(f"-f {file}: no such file; give the path of an lsq.yaml")
        return file.resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / MANIFEST).is_file():
            return folder / MANIFEST
    raise UsageError(
        f"no {MANIFEST} in {here} or any parent folder; run `lsq init` to create an app"
    )


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def read_manifest(path: Path) -> Any:
    try:
        data = _yaml().load(path.read_text())
    except Exception as exc:  # ruamel raises many kinds; all mean "not YAML"
        raise ManifestError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        data = CommentedMap()
    if not isinstance(data, dict):
        raise ManifestError(
            f"{path}: expected a mapping at the top, found {type(data).__name__}"
        )
    return data


def services_of(data: Any, path: Path) -> dict[str, Any]:
    services = data.get("services")
    if services is None:
        return {}
    if not isinstance(services, dict):
        raise ManifestError(f"{path}: 'services' must be a mapping, found {services!r}")
    return services


def add_service(path: Path, name: str, entry: dict[str, Any]) -> None:
    """Append `name: entry` to the manifest's services, keeping everything else."""
    data = read_manifest(path)
    services = data.get("services")
    if not isinstance(services, CommentedMap):
        # `services: {}` (or missing): a block mapping from now on.
        services = CommentedMap()
        data["services"] = services
    if name in services:
        raise UsageError(f"{path}: service {name!r} is already in the manifest")
    services[name] = _to_commented(entry)
    buffer = io.StringIO()
    _yaml().dump(data, buffer)
    path.write_text(buffer.getvalue())


def _to_commented(entry: dict[str, Any]) -> CommentedMap:
    result = CommentedMap()
    for key, value in entry.items():
        if isinstance(value, dict):
            inner = CommentedMap(value)
            inner.fa.set_flow_style()
            result[key] = inner
        else:
            result[key] = value
    return result
