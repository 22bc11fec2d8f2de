"""Helpers for the template tests: run the real `lsq` CLI, start services."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
LSQ_BIN = Path(sys.executable).with_name("lsq")


@dataclass
class Result:
    code: int
    out: str
    err: str


Lsq = Callable[..., Result]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lsq-cache")


def run_lsq(
    *args: str,
    cwd: Path,
    cache: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Result:
    full_env = {**os.environ, "LSQ_CACHE_DIR": str(cache), **(env or {})}
    done = subprocess.run(
        [str(LSQ_BIN), *args],
        cwd=cwd,
        env=full_env,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def lsq(cache_dir: Path) -> Lsq:
    def call(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Result:
        return run_lsq(*args, cwd=cwd, cache=cache_dir, env=env)

    return call


@pytest.fixture
def app(tmp_path: Path, lsq: Lsq) -> Path:
    """A fresh app made by `lsq init`."""
    folder = tmp_path / "shop"
    result = lsq("init", str(folder), cwd=tmp_path)
    assert result.code == 0, result.err
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Running:
    proc: subprocess.Popen[str]
    base: str

    def output(self) -> str:
        self.stop()
        assert self.proc.stdout is not None
        with self.proc.stdout:
            return self.proc.stdout.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_service(
    folder: Path, command: list[str], env: dict[str, str], deadline: float = 30
) -> Running:
    """Start a generated service as LSQ would and wait for /health/ready."""
    port = free_port()
    full_env = {
        **os.environ,
        "PORT": str(port),
        "LSQ_SERVICE": folder.name,
        "LSQ_INSTANCE": f"{folder.name}-1",
        **env,
    }
    full_env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    proc = subprocess.Popen(
        command,
        cwd=folder,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = Running(proc, f"http://127.0.0.1:{port}")
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"service exited early:\n{running.output()}")
        try:
            if httpx.get(running.base + "/health/ready", timeout=2).status_code == 200:
                return running
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    out = running.output()
    raise AssertionError(f"service not ready in {deadline}s:\n{out}")


@pytest.fixture
def service_runner() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(folder: Path, command: list[str], env: dict[str, str]) -> Running:
        running = start_service(folder, command, env)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
        if running.proc.stdout is not None:
            running.proc.stdout.close()


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@localhost",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@localhost",
    }
    done = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def commit_and_tag(repo: Path, tag: str) -> None:
    if not (repo / ".git").exists():
        git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", tag)
    git(repo, "tag", tag)


def have(tool: str) -> bool:
    return shutil.which(tool) is not None
