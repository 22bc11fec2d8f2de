"""`lsq template status` and `lsq template update`.

An update runs copier's own update (a three-way merge of the old template
version, the new one and the developer's files) in a scratch git repository
holding a copy of the service, so the app folder needs no git state. Then only
the files that really changed are written back, and the report is computed by
comparing the files before and after: it can only describe what happened.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from packaging.version import InvalidVersion, Version
from ruamel.yaml import YAML

from lsq.errors import UsageError
from lsq.templates._app import read_manifest, services_of
from lsq.templates._builtin import _git, builtin, is_builtin_repo, materialize
from lsq.templates._copier import ANSWERS_FILE, copy_template, run_update

Action = Literal["added", "updated", "removed", "conflict", "overwritten"]
_MARKERS = (b"<<<<<<< before updating", b">>>>>>> after updating")
_SKIPPED = (".git", ".venv", "node_modules", "__pycache__", ".pytest_cache")
_DEPENDENCY_FILES = {"requirements.txt", "requirements-dev.txt", "package-lock.json"}


@dataclass(frozen=True)
class TemplateStatus:
    """Where one service's files came from, and whether a newer version exists."""

    service: str
    template: str | None
    version: str | None
    latest: str | None

    @property
    def behind(self) -> bool:
        return _newer(self.latest, self.version)


@dataclass(frozen=True)
class FileChange:
    path: str
    action: Action


@dataclass(frozen=True)
class UpdateReport:
    service: str
    old_version: str | None
    new_version: str | None
    changes: tuple[FileChange, ...]

    @property
    def conflicts(self) -> list[str]:
        return [c.path for c in self.changes if c.action == "conflict"]


def service_folders(manifest: Path) -> dict[str, Path]:
    services = services_of(read_manifest(manifest), manifest)
    root = manifest.parent
    folders = {}
    for name, entry in services.items():
        cwd = entry.get("cwd") if isinstance(entry, dict) else None
        folders[str(name)] = (root / str(cwd or name)).resolve()
    return folders


def read_answers(folder: Path) -> dict[str, Any] | None:
    path = folder / ANSWERS_FILE
    if not path.is_file():
        return None
    data = YAML(typ="safe").load(path.read_text())
    return data if isinstance(data, dict) else None


def status(manifest: Path) -> list[TemplateStatus]:
    result = []
    for name, folder in service_folders(manifest).items():
        answers = read_answers(folder)
        if answers is None:
            result.append(TemplateStatus(name, None, None, None))
            continue
        src = str(answers.get("_src_path", ""))
        version = _strip_v(answers.get("_commit"))
        builtin_name = is_builtin_repo(src)
        if builtin_name is not None:
            latest: str | None = builtin(builtin_name).version
        else:
            latest = latest_tag(src)
        result.append(TemplateStatus(name, builtin_name or src, version, latest))
    return result


def latest_tag(source: str) -> str | None:
    """The highest version tag of a git template; None when it cannot be read."""
    done = subprocess.run(
        ["git", "ls-remote", "--tags", "--refs", source],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        return None
    versions = []
    for line in done.stdout.splitlines():
        tag = line.rpartition("refs/tags/")[2]
        try:
            versions.append((Version(tag), _strip_v(tag)))
        except InvalidVersion:
            continue
    return max(versions)[1] if versions else None


def update(
    manifest: Path, service: str, *, force: bool = False, trust: bool = False
) -> UpdateReport:
    folders = service_folders(manifest)
    if service not in folders:
        raise UsageError(
            f"{manifest}: no service {service!r}; see `lsq template status`"
        )
    folder = folders[service]
    answers = read_answers(folder)
    if answers is None:
        raise UsageError(
            f"service {service!r}: {folder / ANSWERS_FILE} not found; only services "
            "made by `lsq new` can be updated"
        )
    src = str(answers.get("_src_path", ""))
    builtin_name = is_builtin_repo(src)
    source = str(materialize(builtin(builtin_name))) if builtin_name else src
    old_version = _strip_v(answers.get("_commit"))
    with tempfile.TemporaryDirectory(prefix="lsq-update-") as scratch:
        work = Path(scratch) / service
        before = _stage(folder, work, source)
        run_update(work, vcs_ref=None, trust=trust or bool(builtin_name))
        after = _snapshot(work)
        new_answers = read_answers(work) or {}
        new_version = _strip_v(new_answers.get("_commit"))
        changes = _changes(before, after)
        if force:
            changes = _overwrite_conflicts(changes, work, source, new_answers, trust)
            after = _snapshot(work)
        _write_back(folder, before, after)
    return UpdateReport(service, old_version, new_version, tuple(changes))


def dependencies_changed(report: UpdateReport) -> bool:
    return any(
        Path(c.path).name in _DEPENDENCY_FILES and c.action != "conflict"
        for c in report.changes
    )


def _stage(folder: Path, work: Path, source: str) -> dict[str, bytes]:
    # A scratch repository with the service's files, committed: copier's update
    # needs a clean git work tree and we must not touch the developer's own git.
    shutil.copytree(
        folder, work, ignore=shutil.ignore_patterns(*_SKIPPED), symlinks=True
    )
    _point_answers_at(work / ANSWERS_FILE, source)
    _git(work, "init", "-q", "-b", "main")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "--allow-empty", "-m", "before update")
    return _snapshot(work)


def _point_answers_at(answers: Path, source: str) -> None:
    # A built-in template's cache may live elsewhere than where the service was
    # made (another machine, another cache folder): copier reads the source
    # from the answers file, so the scratch copy names the current one.
    lines = answers.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("_src_path:"):
            lines[i] = f"_src_path: {json.dumps(source)}\n"
    answers.write_text("".join(lines))


def _snapshot(root: Path) -> dict[str, bytes]:
    files = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if rel.parts[0] in _SKIPPED or not path.is_file():
            continue
        files[rel.as_posix()] = path.read_bytes()
    return files


def _has_markers(content: bytes) -> bool:
    lines = {line.rstrip() for line in content.splitlines()}
    return any(marker in lines for marker in _MARKERS)


def _changes(before: dict[str, bytes], after: dict[str, bytes]) -> list[FileChange]:
    changes = []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        if new is None:
            changes.append(FileChange(path, "removed"))
        elif _has_markers(new) and not (old and _has_markers(old)):
            changes.append(FileChange(path, "conflict"))
        elif old is None:
            changes.append(FileChange(path, "added"))
        else:
            changes.append(FileChange(path, "updated"))
    return changes


def _overwrite_conflicts(
    changes: list[FileChange],
    work: Path,
    source: str,
    answers: dict[str, Any],
    trust: bool,
) -> list[FileChange]:
    """--force: a conflicting file becomes the new template's version of it."""
    conflicted = [c.path for c in changes if c.action == "conflict"]
    if not conflicted:
        return changes
    data = {k: v for k, v in answers.items() if not k.startswith("_")}
    with tempfile.TemporaryDirectory(prefix="lsq-fresh-") as scratch:
        fresh = Path(scratch) / "fresh"
        copy_template(source, fresh, data, trust=trust, vcs_ref=answers.get("_commit"))
        for rel in conflicted:
            shutil.copyfile(fresh / rel, work / rel)
    return [
        FileChange(c.path, "overwritten") if c.action == "conflict" else c
        for c in changes
    ]


def _write_back(
    folder: Path, before: dict[str, bytes], after: dict[str, bytes]
) -> None:
    for rel, content in after.items():
        if before.get(rel) != content:
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    for rel in before.keys() - after.keys():
        (folder / rel).unlink(missing_ok=True)


def _strip_v(value: object) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text[1:] if text[:1] in {"v", "V"} and text[1:2].isdigit() else text


def _newer(latest: str | None, current: str | None) -> bool:
    if latest is None or current is None:
        return False
    try:
        return Version(latest) > Version(current)
    except InvalidVersion:
        return latest != current
