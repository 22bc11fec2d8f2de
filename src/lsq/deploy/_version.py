"""What identifies a version: the git commit of the app, a hash of the
service's manifest entry, and (for `--ref`) a worktree checked out for it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lsq.errors import UsageError
from lsq.manifest import AppConfig
from lsq.manifest._frozen import plain

GIT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Identity:
    """Where a version came from; `commit` is None outside a git repository."""

    hash: str
    commit: str | None
    dirty: bool
    ref: str | None
    time: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def same_code(self, other: dict[str, Any]) -> bool:
        """Same manifest entry and commit, and neither from a `--ref` worktree."""
        return (
            other.get("hash") == self.hash
            and other.get("commit") == self.commit
            and not other.get("ref")
            and not self.ref
        )


def entry_hash(app: AppConfig, service: str) -> str:
    """A hash of the service's entry and its resolved env (values not shown)."""
    data = {
        "service": plain(app.services[service], exclude=frozenset({"release"})),
        "env": app.env.get(service, {}),
    }
    text = json.dumps(data, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def tree_state(folder: Path) -> tuple[str | None, bool]:
    """(commit, dirty) of the git tree holding `folder`; (None, False) outside one."""
    commit = _git(folder, "rev-parse", "HEAD")
    dirty = bool(_git(folder, "status", "--porcelain")) if commit else False
    return commit, dirty


_trees_at_start: dict[Path, Future[tuple[str | None, bool]]] = {}


def look_at_tree_soon(folder: Path) -> None:
    """Run `tree_state(folder)` on a thread now, for `tree_state_at_start`:
    at start-up git then runs while the runtime sets up, instead of before
    the first service starts (git in a large tree takes a while)."""
    done: Future[tuple[str | None, bool]] = Future()

    def look() -> None:
        try:
            done.set_result(tree_state(folder))
        except BaseException as exc:  # handed to the caller of tree_state_at_start
            done.set_exception(exc)

    _trees_at_start[folder] = done
    threading.Thread(target=look, name="lsq-git", daemon=True).start()


def tree_state_at_start(folder: Path) -> tuple[str | None, bool]:
    """What `look_at_tree_soon(folder)` found, or `tree_state(folder)` now."""
    done = _trees_at_start.pop(folder, None)
    return done.result() if done is not None else tree_state(folder)


def identify(app: AppConfig, service: str, *, folder: Path | None = None,
             ref: str | None = None,
             tree: tuple[str | None, bool] | None = None) -> Identity:
    """The identity of the service as `app` describes it, code from `folder`.

    `tree` is the folder's `tree_state`, when the caller already has it (at
    start-up every service shares the app's tree: git runs once, not twice a
    service)."""
    commit, dirty = tree if tree is not None else tree_state(folder or app.root)
    return Identity(entry_hash(app, service), commit, dirty, ref, time.time())


def checkout(app: AppConfig, service: str, ref: str, version: str) -> Path:
    """Check `ref` out under `.lsq/releases/<service>/<version>/`; returns the
    service's working folder inside that tree."""
    top = _git(app.root, "rev-parse", "--show-toplevel")
    if top is None:
        raise UsageError(
            f"--ref {ref}: {str(app.root)!r} is not in a git repository; "
            "deploy without --ref or run `git init`"
        )
    if _git(app.root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}") is None:
        raise UsageError(f"--ref {ref}: no such commit, branch or tag in {top}")
    tree = app.root / ".lsq" / "releases" / service / version
    tree.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["git", "-C", top, "worktree", "add", "--detach", str(tree), ref],
        capture_output=True, text=True, timeout=GIT_TIMEOUT,
    )
    if done.returncode != 0:
        raise UsageError(f"--ref {ref}: git worktree add failed: {done.stderr.strip()}")
    return tree / app.cwd(service).relative_to(Path(top).resolve())


def remove_checkout(app: AppConfig, service: str, version: str) -> None:
    tree = app.root / ".lsq" / "releases" / service / version
    if tree.exists():
        _git(app.root, "worktree", "remove", "--force", str(tree))
