"""`lsq up -d` once the manifest is loaded: the checks before anything
starts, the hand-off to a detached runtime, and its report. Free of click,
so that `lsq up -d` can run without loading the CLI (`lsq.cli._early`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsq.errors import LsqError

if TYPE_CHECKING:
    from lsq.manifest import AppConfig


def check_startable(app: AppConfig) -> None:
    """Raise if the app runs already or its fixed ingress port is taken."""
    from lsq.runtime._info import read_runtime_info
    from lsq.runtime._ports import check_ingress

    state = app.root / ".lsq"
    if state.exists() and not state.is_dir():
        raise LsqError(
            f"{state} is a file; LSQ keeps the app's state in a folder of that name: "
            "move the file away"
        )
    info = read_runtime_info(state)
    if info is not None:
        raise LsqError(
            f"the app is already running (runtime pid {info.pid}); "
            "see it with `lsq ps`, stop it with `lsq down`"
        )
    check_ingress(app)


def start_detached_and_follow(
    app: AppConfig, services: list[str], timeout: float | None
) -> None:
    """Start a detached runtime for `app` and report its start-up; raises
    `StartupFailed` if it does not come up."""
    from lsq.cli._daemon import start_detached
    from lsq.cli._report import follow_detached
    from lsq.manifest._cache import save

    state = app.root / ".lsq"
    state.mkdir(parents=True, exist_ok=True)
    app = app.frozen()  # once, for the cache and the runtime alike
    save(app, state)  # the next `lsq up -d` may start from it (lsq.cli._early)
    # The manifest is loaded and checked already: hand it to a runtime forked
    # from here rather than start a new interpreter that would import and
    # parse again. It reports start-up over a pipe, so nothing here polls.
    pid, read_fd, log_start = start_detached(app, state, services)
    follow_detached(app.name, state, pid, read_fd, log_start, timeout)
