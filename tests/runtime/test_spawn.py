"""Starting a process off the event loop: a start whose replica is stopped
while it is still on its thread, or that is still on its way when the runtime
shuts down, is ended, not left running unowned."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from lsq.runtime._spawn import spawn, stop_spawning


class _Guard:
    """Stands in for the guard's pipe: the groups it was told of and told to forget."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.forgotten: list[int] = []

    def __call__(self, op: str, pgid: int) -> None:
        (self.started if op == "+" else self.forgotten).append(pgid)


def _sleeper(folder: Path, guard: _Guard) -> Any:
    """A start of a process that sleeps for two minutes, told to `guard`."""
    return spawn(
        [sys.executable, "-c", "import time; time.sleep(120)"],
        cwd=folder,
        env=dict(os.environ),
        sink=lambda stream, text, partial: None,
        guard=guard,
    )


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_start_cancelled_while_in_flight_is_killed(tmp_path: Path) -> None:
    guard = _Guard()
    started = guard.started

    async def scenario() -> None:
        task = asyncio.ensure_future(_sleeper(tmp_path, guard))
        await asyncio.sleep(0)  # the start is on its thread now
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        deadline = time.monotonic() + 10
        while not started and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert len(started) == 1, "the start should have gone ahead on its thread"
    pid = started[0]
    deadline = time.monotonic() + 10
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(pid), f"pid {pid} still runs after its start was cancelled"


def test_the_guard_hears_the_pid_before_spawn_returns(tmp_path: Path) -> None:
    guard = _Guard()

    async def scenario() -> int:
        child = await spawn(
            [sys.executable, "-c", "pass"],
            cwd=tmp_path,
            env=dict(os.environ),
            sink=lambda stream, text, partial: None,
            guard=guard,
        )
        assert guard.started == [child.pid] and guard.forgotten == []
        return await child.exited

    assert asyncio.run(scenario()) == 0


def test_starts_on_their_way_at_shut_down_are_ended(tmp_path: Path) -> None:
    # More starts than spawning threads, and the runtime closes before its
    # loop ever sees one of them (a stop right after `lsq up` began).
    guard = _Guard()
    started, forgotten = guard.started, guard.forgotten

    async def scenario() -> list[object]:
        tasks = [asyncio.ensure_future(_sleeper(tmp_path, guard)) for _ in range(24)]
        await asyncio.sleep(0)  # every start is queued or on a thread
        stop_spawning()  # what Runtime.close does
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(scenario())
    assert all(isinstance(r, asyncio.CancelledError) for r in results), results
    assert sorted(forgotten) == sorted(started)
    left = [pid for pid in started if not _gone(pid)]
    assert not left, f"still running after shut-down: {left}"
