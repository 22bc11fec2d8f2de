"""Helpers for the runtime tests: drive the real `lsq` console script against an app folder written by the test.

`app` is a tmp folder with helpers to write files, run `lsq` commands, start a
foreground `lsq up` and watch its output. Every process a test starts (and
every descendant seen while it ran) is remembered; the fixture's teardown runs
`lsq down` and then kills by PID whatever is still alive, so a failing test
leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from polling import wait_for  # noqa: F401 (re-exported to the tests)

from lsq.runtime._info import starting_runtime_info

LSQ = str(Path(sys.executable).parent / "lsq")
PY = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    """True if nothing listens on 127.0.0.1:port (a bind succeeds)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def assert_all_gone(procs: list[psutil.Process], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in procs):
        time.sleep(0.05)
    left = [f"{p.pid} {p.cmdline()}" for p in procs if alive(p)]
    assert not left, f"processes left running: {left}"


class Up:
    """A foreground `lsq up` whose combined output goes to a file."""

    def __init__(self, app: App, args: tuple[str, ...], **popen: object) -> None:
        self.app = app
        self.out_path = app.root / f"up-{len(app.ups)}.out"
        self._out = open(self.out_path, "wb")  # noqa: SIM115 - held until close()
        self.proc = subprocess.Popen(
            [LSQ, "up", *args],
            cwd=app.cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=app.env,
            **popen,  # type: ignore[arg-type]
        )
        self.pid = self.proc.pid
        self.seen: dict[int, psutil.Process] = {}

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def wait_output(self, text: str, timeout: float = 15.0) -> str:
        def found() -> bool:
            if self.proc.poll() is not None and text not in self.output():
                pytest.fail(
                    f"lsq up exited ({self.proc.returncode}) before {text!r}:\n{self.output()}"
                )
            return text in self.output()

        wait_for(found, timeout, f"{text!r} in the output of lsq up:\n{self.output()}")
        return self.output()

    def wait_ready(self, timeout: float = 15.0) -> None:
        self.wait_output("services are up", timeout)
        self.remember()

    def remember(self) -> list[psutil.Process]:
        """Note every current descendant of lsq (services, their children, the guard)."""
        try:
            for child in psutil.Process(self.pid).children(recursive=True):
                self.seen.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            pass
        return list(self.seen.values())

    def send(self, sig: int) -> None:
        self.remember()
        os.kill(self.pid, sig)

    def wait(self, timeout: float = 20.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"lsq up still running after {timeout:g}s:\n{self.output()}")

    def close(self) -> None:
        self._out.close()


class App:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.cwd = root
        self.ups: list[Up] = []
        self.pids: list[psutil.Process] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LSQ_")}
        self.env["NO_COLOR"] = "1"

    def write(self, name: str, text: str, *, mode: int | None = None) -> Path:
        path = self.cwd / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        if mode is not None:
            path.chmod(mode)
        return path

    def manifest(self, text: str) -> Path:
        return self.write("lsq.yaml", text)

    def script(self, name: str, body: str) -> str:
        """Write a Python program; returns a shell-quoted command that runs it."""
        path = self.write(name, body)
        return f"{PY} {path.name}"

    def lsq(
        self, *args: str, timeout: float = 30.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LSQ, *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            check=False,
        )

    def logs(self, *args: str, until: str) -> str:
        """`lsq logs ARGS` once it shows `until` (the runtime flushes its log
        files a few times a second, so a line just printed may lag)."""

        def output() -> str:
            out = self.lsq("logs", *args).stdout
            return out if until in out else ""

        return str(wait_for(output, 5, f"{until!r} in lsq logs {' '.join(args)}"))

    def up(self, *args: str) -> Up:
        up = Up(self, args)
        self.ups.append(up)
        return up

    def ps(self) -> dict[str, object]:
        result = self.lsq("ps", "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def service(self, name: str) -> dict[str, object]:
        for svc in self.ps()["services"]:  # type: ignore[attr-defined]
            if svc["name"] == name:
                return svc  # type: ignore[no-any-return]
        raise AssertionError(f"no service {name} in lsq ps")

    def state_dir(self) -> Path:
        return self.cwd / ".lsq"

    def runtime_pid(self) -> int | None:
        try:
            return int(
                json.loads((self.state_dir() / "runtime.json").read_text())["pid"]
            )
        except (OSError, ValueError, KeyError):
            return None

    def track_runtime(self) -> psutil.Process | None:
        """Remember the detached runtime and its descendants for cleanup."""
        pid = self.runtime_pid()
        if pid is None:
            return None
        proc = psutil.Process(pid)
        self.pids.append(proc)
        self.pids.extend(proc.children(recursive=True))
        return proc

    def cleanup(self) -> None:
        # A runtime still starting (its CLI failed the test early) writes its
        # info soon: wait for it, so that it is stopped too.
        starting_runtime_info(self.state_dir(), 5.0)
        if (self.state_dir() / "runtime.json").exists():
            try:
                self.track_runtime()
                self.lsq("down", "--timeout", "20", timeout=30)
            except (subprocess.TimeoutExpired, psutil.NoSuchProcess):
                pass
        for up in self.ups:
            up.remember()
            if up.proc.poll() is None:
                up.proc.kill()
                up.proc.wait(5)
            up.close()
            self.pids.extend(up.seen.values())
        for proc in self.pids:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    """An app folder; everything started in it is stopped at the end."""
    folder = App(tmp_path)
    try:
        yield folder
    finally:
        folder.cleanup()


GREETER = """
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (os.environ.get("GREETING", "?") + "|" + os.environ.get("TOKEN", "?")).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""


def greeter_app(app: App, greeting: str = "hello", *, env_file: bool = True) -> None:
    """One service, `web`, answering GREETING|TOKEN: GREETING from lsq.yaml,
    TOKEN from web.env (written here unless `env_file` is False)."""
    app.write("web.py", GREETER)
    if env_file:
        app.write("web.env", "TOKEN=one\n")
    app.manifest(f"""
        services:
          web:
            command: [{PY}, web.py]
            env_file: web.env
            env:
              GREETING: {greeting}
            health: {{http: /}}
    """)


def instance_states(svc: dict[str, object]) -> list[str]:
    return [str(i["state"]) for i in svc["instances"]]  # type: ignore[attr-defined]


__all__ = [
    "LSQ",
    "PY",
    "App",
    "Up",
    "alive",
    "assert_all_gone",
    "free_port",
    "greeter_app",
    "instance_states",
    "port_free",
    "wait_for",
]
