"""Built-in templates and how they become versioned git repositories.

copier updates a service by diffing two versions of its template, so it needs
the template's history as git tags. The package ships only the current files
of each built-in template (with its version in `VERSION`); on first use each
version is committed and tagged `v<version>` in a cache repository, so every
version this machine has used stays available for later updates.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lsq.errors import UsageError

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules", ".venv")


@dataclass(frozen=True)
class TemplateInfo:
    """A built-in template: its name, current version and packaged folder."""

    name: str
    version: str
    path: Path


def builtin_dir() -> Path:
    # LSQ_TEMPLATES_DIR points to another set of built-ins (tests, template work).
    return Path(os.environ.get("LSQ_TEMPLATES_DIR", BUILTIN_DIR))


def cache_dir() -> Path:
    base = os.environ.get("LSQ_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "lsq"
    )
    return Path(base) / "templates"


def builtin_templates() -> list[TemplateInfo]:
    root = builtin_dir()
    found = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if (path / "copier.yml").is_file():
            version = (path / "VERSION").read_text().strip()
            found.append(TemplateInfo(path.name, version, path))
    return found


def builtin(name: str) -> TemplateInfo:
    for info in builtin_templates():
        if info.name == name:
            return info
    names = ", ".join(t.name for t in builtin_templates())
    raise UsageError(
        f"--template {name}: no built-in template of that name (built-in: {names}); "
        "give one of those, a template folder or a git URL"
    )


def is_builtin_repo(src_path: str) -> str | None:
    """The built-in name if `src_path` is one of our cache repositories."""
    path = Path(src_path)
    if path.parent == cache_dir():
        return path.name
    # Made with another cache folder (another machine or user): still ours if
    # it has the cache's shape and names a built-in that exists here.
    known = {t.name for t in builtin_templates()}
    if path.parent.name == "templates" and path.parent.parent.name == "lsq":
        return path.name if path.name in known else None
    return None


def materialize(info: TemplateInfo) -> Path:
    """The cache repository of `info`, with a tag for its current version."""
    repo = cache_dir() / info.name
    repo.parent.mkdir(parents=True, exist_ok=True)
    with _locked(repo.parent / f".{info.name}.lock"):
        if not (repo / ".git").is_dir():
            repo.mkdir(exist_ok=True)
            _git(repo, "init", "-q", "-b", "main")
        tag = f"v{info.version}"
        if not _git(repo, "tag", "--list", tag).strip():
            _commit_version(repo, info, tag)
    return repo


def _commit_version(repo: Path, info: TemplateInfo, tag: str) -> None:
    for child in repo.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    shutil.copytree(info.path, repo, ignore=_IGNORED, dirs_exist_ok=True)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "--allow-empty", "-m", f"{info.name} {info.version}")
    _git(repo, "tag", tag)


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "lsq",
        "GIT_AUTHOR_EMAIL": "lsq@localhost",
        "GIT_COMMITTER_NAME": "lsq",
        "GIT_COMMITTER_EMAIL": "lsq@localhost",
    }
    done = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise UsageError(
            f"{repo}: git {' '.join(args)} failed: {done.stderr.strip()}; "
            "check that git works here"
        )
    return done.stdout


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two lsq commands may materialise the same template at once.
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
