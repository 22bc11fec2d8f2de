"""`lsq up -d` again in the same app folder starts from the checked-manifest
cache, exactly as a full load would; the first gateway worker is forked from
the runtime, and one that dies is replaced by a new interpreter."""

from __future__ import annotations

import os
import signal
import urllib.request

import psutil
from rthelpers import PY, App, assert_all_gone, wait_for

CACHE_NOTE = "starting from .lsq/manifest.cache"

WEB = """
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


def _web_app(app: App, greeting: str = "hello") -> None:
    app.write("web.py", WEB)
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


def _up(app: App) -> str:
    result = app.lsq("up", "-d")
    app.track_runtime()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "web" in result.stdout and "healthy" in result.stdout
    return result.stdout


def _get(app: App) -> str:
    address = str(app.service("web")["address"])
    with urllib.request.urlopen(address + "/", timeout=5) as answer:
        return answer.read().decode()


def _log(app: App) -> str:
    return (app.state_dir() / "runtime.log").read_text()


def _from_cache(app: App) -> bool:
    return _log(app).count(CACHE_NOTE) > 0


def _restart(app: App) -> None:
    assert app.lsq("down").returncode == 0
    (app.state_dir() / "runtime.log").unlink()


def test_a_second_up_starts_from_the_cache_and_runs_the_same(app: App) -> None:
    _web_app(app)
    _up(app)
    assert not _from_cache(app)
    assert _get(app) == "hello|one"
    _restart(app)
    out = _up(app)
    assert _from_cache(app)
    assert "dashboard: http://127.0.0.1:" in out
    assert _get(app) == "hello|one"


def test_an_edited_manifest_or_env_file_is_loaded_again(app: App) -> None:
    _web_app(app)
    _up(app)
    _restart(app)
    _web_app(app, greeting="bonjour")
    _up(app)
    assert not _from_cache(app)
    assert _get(app) == "bonjour|one"
    _restart(app)
    app.write("web.env", "TOKEN=two\n")
    _up(app)
    assert not _from_cache(app)
    assert _get(app) == "bonjour|two"


def test_a_changed_environment_is_not_served_from_the_cache(app: App) -> None:
    _web_app(app, greeting="${GREETING_FROM_SHELL:-hello}")
    _up(app)
    _restart(app)
    app.env["GREETING_FROM_SHELL"] = "hi"
    _up(app)
    assert not _from_cache(app)
    assert _get(app) == "hi|one"


def test_a_start_from_the_cache_reports_a_crash_loop_as_usual(app: App) -> None:
    _web_app(app)
    _up(app)
    _restart(app)
    # The program is not part of the manifest: the cache still matches.
    app.write("web.py", "import sys\nprint('broken on purpose', file=sys.stderr)\nsys.exit(3)\n")
    result = app.lsq("up", "-d")
    app.track_runtime()
    assert _from_cache(app)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "keeps crashing" in result.stderr and "exit code 3" in result.stderr


def test_up_from_the_cache_refuses_an_app_already_running(app: App) -> None:
    _web_app(app)
    _up(app)
    result = app.lsq("up", "-d")
    assert result.returncode == 1
    assert "already running" in result.stderr


def _workers(runtime: psutil.Process) -> list[psutil.Process]:
    found = []
    for kid in runtime.children():
        try:
            if kid.name() == "lsq-gateway" or "lsq.gateway._worker" in " ".join(kid.cmdline()):
                found.append(kid)
        except psutil.NoSuchProcess:
            continue
    return found


def test_the_forked_gateway_worker_is_replaced_when_it_dies(app: App) -> None:
    _web_app(app)
    _up(app)
    runtime = app.track_runtime()
    assert runtime is not None
    [first] = _workers(runtime)
    assert first.name() == "lsq-gateway"  # forked, and named so in ps and top
    assert _get(app) == "hello|one"
    os.kill(first.pid, signal.SIGKILL)
    assert_all_gone([first])
    fresh = wait_for(lambda: [w for w in _workers(runtime) if w.pid != first.pid], 15,
                     "a new gateway worker")
    assert "lsq.gateway._worker" in " ".join(fresh[0].cmdline())
    wait_for(lambda: _answers(app), 10, "the gateway answering again")


def _answers(app: App) -> bool:
    try:
        return _get(app) == "hello|one"
    except OSError:
        return False


def test_a_runtime_that_cannot_start_leaves_no_gateway_worker(app: App) -> None:
    # The runtime's lock is held (an app already running): a second runtime
    # started by hand forks its worker first, then fails, and must end it.
    _web_app(app)
    _up(app)
    runtime = app.track_runtime()
    assert runtime is not None
    before = {p.pid for p in psutil.process_iter() if _is_worker(p)}
    second = psutil.Popen([PY, "-m", "lsq.cli._daemon", "lsq.yaml"], cwd=app.root,
                          env=app.env, stdout=-1, stderr=-1)
    out, _ = second.communicate(timeout=30)
    assert second.returncode == 1 and b"already running" in out
    assert {p.pid for p in psutil.process_iter() if _is_worker(p)} == before


def _is_worker(proc: psutil.Process) -> bool:
    try:
        return proc.name() == "lsq-gateway" or "lsq.gateway._worker" in " ".join(proc.cmdline())
    except psutil.Error:
        return False
