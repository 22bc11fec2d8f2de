"""`lsq new`: render a template into NAME/, install its dependencies, add it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsq.errors import UsageError
from lsq.templates._app import (
    add_service,
    read_manifest,
    services_of,
    validate_name,
)
from lsq.templates._builtin import builtin, builtin_templates, materialize
from lsq.templates._copier import copy_template

DATA_KINDS = ("sqlite", "postgres", "none")


@dataclass(frozen=True)
class NewService:
    """What `lsq new` did, for the CLI to show."""

    name: str
    folder: Path
    template: str
    version: str | None
    entry: dict[str, Any]
    install_seconds: float | None = None
    steps: list[str] = field(default_factory=list)


def resolve_source(template: str) -> tuple[str, str | None, str | None]:
    """(copier source, built-in name or None, version) for `--template`."""
    if template in {t.name for t in builtin_templates()}:
        info = builtin(template)
        return str(materialize(info)), info.name, info.version
    looks_like_path = template.startswith((".", "/", "~")) or os.sep in template
    if "://" in template or template.startswith("git@") or template.endswith(".git"):
        return template, None, None
    if looks_like_path or Path(template).exists():
        path = Path(template).expanduser().resolve()
        if not path.is_dir():
            raise UsageError(f"--template {template}: no such folder")
        return str(path), None, None
    return builtin(template).name, None, None  # raises with the list of names


def new_service(
    manifest: Path,
    name: str,
    *,
    template: str,
    data: str = "sqlite",
    port: int | None = None,
    force: bool = False,
    trust: bool = False,
    install: bool = True,
) -> NewService:
    """Generate service `name` next to `manifest` and add it there."""
    validate_name(name)
    if data not in DATA_KINDS:
        raise UsageError(f"--data {data}: expected one of {', '.join(DATA_KINDS)}")
    if port is not None and not 1 <= port <= 65535:
        raise UsageError(f"--port {port}: expected a port from 1 to 65535")
    if name in services_of(read_manifest(manifest), manifest):
        raise UsageError(
            f"{manifest}: service {name!r} exists already; choose another name"
        )
    folder = manifest.parent / name
    if folder.exists() and not force:
        raise UsageError(
            f"{folder} exists already; choose another name or pass --force"
        )

    # Render first: a failing template leaves lsq.yaml untouched.
    source, builtin_name, _ = resolve_source(template)
    answers = {"service_name": name, "data": data}
    version = copy_template(
        source, folder, answers, trust=trust or builtin_name is not None
    )
    steps: list[str] = []
    seconds = _install(folder, steps) if install else None
    entry = service_entry(folder, name, data=data, port=port)
    add_service(manifest, name, entry)
    return NewService(
        name, folder, builtin_name or source, version, entry, seconds, steps
    )


def service_entry(
    folder: Path, name: str, *, data: str, port: int | None
) -> dict[str, Any]:
    """The lsq.yaml entry for a generated service."""
    if (folder / "lsq-command").is_file():
        command = _command_from_template(folder)
    elif (folder / "package.json").is_file():
        command = "node server.js"
    elif (folder / "requirements.txt").is_file():
        command = ".venv/bin/python -m app"
    else:
        command = _command_from_template(folder)
    entry: dict[str, Any] = {"command": command, "cwd": name}
    if port is not None:
        entry["port"] = port
    entry["health"] = {"http": "/health/ready"}
    if data != "none":
        entry["data"] = data
    return entry


def _command_from_template(folder: Path) -> str:
    # A custom template says how to run it in a file named `lsq-command`.
    marker = folder / "lsq-command"
    if marker.is_file():
        return marker.read_text().strip()
    raise UsageError(
        f"{folder}: cannot tell how to run this service (no package.json, "
        "requirements.txt or lsq-command file); add an lsq-command file to the template"
    )


def _install(folder: Path, steps: list[str]) -> float | None:
    start = time.monotonic()
    if (folder / "package-lock.json").is_file():
        _run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], folder, steps)
    elif (folder / "requirements.txt").is_file():
        _make_venv(folder, steps)
    else:
        return None
    return time.monotonic() - start


def _make_venv(folder: Path, steps: list[str]) -> None:
    # The service gets its own `.venv`, made by the interpreter that runs lsq,
    # so `lsq up` needs nothing else. The packages themselves live in a shared
    # environment keyed by the requirements (built once per machine); the
    # service's venv sees them through a .pth file, so a second `lsq new` costs
    # a venv without pip rather than a full install.
    wanted = (
        "requirements-dev.txt"
        if (folder / "requirements-dev.txt").is_file()
        else "requirements.txt"
    )
    shared = _shared_env(folder, wanted, steps)
    venv = folder / ".venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], folder, steps)
    site = _site_packages(venv)
    (site / "_lsq_shared_env.pth").write_text(str(_site_packages(shared)) + "\n")
    for script in (shared / "bin").iterdir():
        target = venv / "bin" / script.name
        if not target.exists() and script.name not in ("activate", "python", "python3"):
            target.symlink_to(script)


def _requirements_text(folder: Path, name: str) -> str:
    lines = []
    for line in (folder / name).read_text().splitlines():
        if line.startswith("-r "):
            lines.append(_requirements_text(folder, line[3:].strip()))
        elif line.strip() and not line.startswith("#"):
            lines.append(line.strip())
    return "\n".join(sorted(lines))


def _site_packages(venv: Path) -> Path:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return venv / "lib" / version / "site-packages"


def _shared_env(folder: Path, wanted: str, steps: list[str]) -> Path:
    import fcntl
    import hashlib
    import os

    text = _requirements_text(folder, wanted)
    key = hashlib.sha256(f"{sys.version}\n{text}".encode()).hexdigest()[:16]
    base = Path(os.environ.get("LSQ_CACHE_DIR") or Path.home() / ".cache" / "lsq") / "envs"
    base.mkdir(parents=True, exist_ok=True)
    env = base / key
    with open(base / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (env / ".complete").exists():
            return env
        shutil.rmtree(env, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(env)], folder, steps)
        reqs = env / "requirements.txt"
        reqs.write_text(text + "\n")
        pip = [str(env / "bin" / "python"), "-m", "pip", "install", "-q"]
        _run([*pip, "--disable-pip-version-check", "-r", str(reqs)], folder, steps)
        (env / ".complete").write_text("")
    return env


def _run(argv: list[str], cwd: Path, steps: list[str]) -> None:
    if shutil.which(argv[0]) is None and not Path(argv[0]).exists():
        raise UsageError(f"{cwd}: {argv[0]} is not installed; install it and run again")
    steps.append(
        " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv))
    )
    done = subprocess.run(argv, cwd=cwd, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise UsageError(
            f"{cwd}: `{' '.join(argv)}` failed (exit {done.returncode}):\n{tail}\n"
            "fix the cause and run it by hand in that folder, or run `lsq new` again "
            "with --force"
        )


def reinstall(root: Path, service: str, manifest: Path) -> None:
    """Install the dependencies of an updated service again."""
    from lsq.templates._update import service_folders

    folder = service_folders(manifest).get(service, root / service)
    _install(folder, [])
