"""The Python helper (`lsq.chaos.connect`) and the pytest fixture."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest
from chelpers import App, wait_for

from lsq.chaos import connect
from lsq.errors import RuntimeNotRunning


def test_context_manager_adds_and_removes(clean: App) -> None:
    with connect(clean.root) as chaos:
        with chaos.abort("web", status=418, duration="30s") as fault:
            assert [f["id"] for f in chaos.list()] == [fault.id]
        assert chaos.list() == []
        with chaos.pause("web", duration="10s", replica="web-0") as paused:
            pid = clean.instance("web-0")["pid"]
            assert paused.replica == "web-0"
            assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
        assert psutil.Process(pid).status() != psutil.STATUS_STOPPED


def test_an_expired_fault_leaves_the_block_quietly(clean: App) -> None:
    with connect(clean.root) as chaos:
        with chaos.latency("web", ms=10, duration="0.5s"):
            wait_for(lambda: chaos.list() == [], 5, "expiry")


def test_the_app_is_found_from_lsq_app_dir(clean: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSQ_APP_DIR", str(clean.root))
    with connect() as chaos:
        assert chaos.app_dir == clean.root.resolve()


def test_no_running_app_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "lsq.yaml").write_text("name: x\nservices: {}\n")
    with pytest.raises(RuntimeNotRunning, match="lsq up -d"):
        connect(tmp_path)


def test_the_pytest_fixture_cleans_up_after_a_test(clean: App, tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["lsq.chaos.pytest_plugin"]\n')
    (tmp_path / "test_uses_chaos.py").write_text(textwrap.dedent("""
        def test_leaves_a_fault(chaos):
            fault = chaos.abort("web", status=503)
            assert fault.id in [f["id"] for f in chaos.list()]
    """))
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env["LSQ_APP_DIR"] = str(clean.root)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    with connect(clean.root) as chaos:
        assert chaos.list() == []
