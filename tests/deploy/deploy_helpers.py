"""Fixtures for the release tests: an app folder with the versioned service,
driven through the real `lsq` console script; teardown stops it and kills by
PID whatever it left."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from polling import wait_for

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

LSQ = str(Path(sys.executable).parent / "lsq")

MANIFEST = """\
name: deploytest
services:
  web:
    command: {python} app.py
    replicas: {replicas}
    stop_timeout: 5s
    env:
{env}
    health:
      http: /health
      interval: 0.2s
    release:
      strategy: {strategy}
      warm: 1s
      ready_timeout: 4s
      drain_timeout: 5s
      steps: {steps}
      step_time: {step_time}
      smoke:
        - path: /
          status: 200
      analysis:
        min_requests: {min_requests}
        extend: 2
"""


class App:
    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copy(HERE / "versioned_app.py", root / "app.py")
        self.env = dict(os.environ, NO_COLOR="1")
        self.procs: dict[int, psutil.Process] = {}

    def write(self, *, replicas: int = 2, strategy: str = "blue-green",
              steps: str = "[25, 50, 100]", step_time: str = "1s",
              min_requests: int = 10, **env: str) -> None:
        lines = "\n".join(f'      {k}: "{v}"' for k, v in env.items()) or "      {}"
        (self.root / "lsq.yaml").write_text(MANIFEST.format(
            python=sys.executable, replicas=replicas, env=lines, strategy=strategy,
            steps=steps, step_time=step_time, min_requests=min_requests))

    def lsq(self, *args: str, timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([LSQ, *args], cwd=self.root, env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        if check and done.returncode != 0:
            pytest.fail(f"lsq {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        self.remember()
        return done

    def status(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.lsq("ps", "--json").stdout)

    def instances(self) -> list[dict]:  # type: ignore[type-arg]
        return list(self.status()["services"][0]["instances"])

    def address(self) -> tuple[str, int]:
        url = self.status()["services"][0]["address"]
        host, port = url.rsplit("//", 1)[1].split(":")
        return host, int(port)

    def history(self) -> list[dict]:  # type: ignore[type-arg]
        return list(json.loads(self.lsq("history", "web", "--json").stdout))

    def remember(self) -> None:
        try:
            info = json.loads((self.root / ".lsq" / "runtime.json").read_text())
            proc = psutil.Process(info["pid"])
            for one in [proc, *proc.children(recursive=True)]:
                self.procs.setdefault(one.pid, one)
        except (OSError, ValueError, KeyError, psutil.Error):
            pass

    def wait_for(self, check, timeout: float, what: str):  # type: ignore[no-untyped-def]
        return wait_for(check, timeout, what, every=0.1)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    folder = App(tmp_path)
    yield folder
    if (tmp_path / "lsq.yaml").exists():
        folder.lsq("down", timeout=60, check=False)
    for proc in folder.procs.values():
        try:
            if proc.is_running():  # same process: psutil checks its start time
                proc.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
