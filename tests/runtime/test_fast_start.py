"""`lsq up -d` again in the same app folder starts from the checked-manifest
cache, exactly as a full load would; the first gateway worker is forked from
the runtime, and one that dies is replaced by a new interpreter."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from rthelpers import LSQ, PY, App, assert_all_gone, free_port, greeter_app, wait_for

from lsq.runtime._guard import GRACE

CACHE_NOTE = "starting from .lsq/manifest.cache"

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
    greeter_app(app)
    _up(app)
    assert not _from_cache(app)
    assert _get(app) == "hello|one"
    _restart(app)
    out = _up(app)
    assert _from_cache(app)
    assert "dashboard: http://127.0.0.1:" in out
    assert _get(app) == "hello|one"


def test_an_edited_manifest_or_env_file_is_loaded_again(app: App) -> None:
    greeter_app(app)
    _up(app)
    _restart(app)
    greeter_app(app, greeting="bonjour")
    _up(app)
    assert not _from_cache(app)
    assert _get(app) == "bonjour|one"
    _restart(app)
    app.write("web.env", "TOKEN=two\n")
    _up(app)
    assert not _from_cache(app)
    assert _get(app) == "bonjour|two"


def test_a_changed_environment_is_not_served_from_the_cache(app: App) -> None:
    greeter_app(app, greeting="${GREETING_FROM_SHELL:-hello}")
    _up(app)
    _restart(app)
    app.env["GREETING_FROM_SHELL"] = "hi"
    _up(app)
    assert not _from_cache(app)
    assert _get(app) == "hi|one"


def test_a_variable_the_manifest_does_not_read_keeps_the_cache(app: App) -> None:
    # A shell changes OLDPWD at every `cd`; a new terminal has its own TERM.
    # Neither changes what the app was loaded into: still a warm start. The
    # services get the environment of this start, not the cached one.
    greeter_app(app, greeting="${GREETING_FROM_SHELL:-hello}")
    _up(app)
    _restart(app)
    app.env["OLDPWD"] = str(app.root / "elsewhere")
    app.env["LSQ_TEST_UNREAD"] = "new"
    _up(app)
    assert _from_cache(app)
    assert _get(app) == "hello|one"
    pid = int(app.service("web")["instances"][0]["pid"])  # type: ignore[index]
    assert psutil.Process(pid).environ()["LSQ_TEST_UNREAD"] == "new"


def test_a_start_from_the_cache_reports_a_crash_loop_as_usual(app: App) -> None:
    greeter_app(app)
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
    greeter_app(app)
    _up(app)
    result = app.lsq("up", "-d")
    assert result.returncode == 1
    assert "already running" in result.stderr


def _workers(runtime: psutil.Process) -> list[psutil.Process]:
    return [kid for kid in runtime.children() if _is_worker(kid)]


def test_the_forked_gateway_worker_is_replaced_when_it_dies(app: App) -> None:
    greeter_app(app)
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
    greeter_app(app)
    _up(app)
    runtime = app.track_runtime()
    assert runtime is not None
    before = _workers_of(app)
    second = psutil.Popen([PY, "-m", "lsq.cli._daemon", "lsq.yaml"], cwd=app.root,
                          env=app.env, stdout=-1, stderr=-1)
    out, _ = second.communicate(timeout=30)
    assert second.returncode == 1 and b"already running" in out
    assert _workers_of(app) == before


def _workers_of(app: App) -> set[int]:
    """The gateway workers running in `app`'s folder: other apps (another
    test, a developer's own) may run theirs meanwhile."""
    found = set()
    for proc in psutil.process_iter():
        try:
            if _is_worker(proc) and proc.cwd() == str(app.root):
                found.add(proc.pid)
        except psutil.Error:
            pass
    return found


def _is_worker(proc: psutil.Process) -> bool:
    try:
        return proc.name() == "lsq-gateway" or "lsq.gateway._worker" in " ".join(proc.cmdline())
    except psutil.Error:
        return False


COUNTED = """
import http.server, os
with open("starts.log", "a") as f:
    f.write(os.environ["LSQ_INSTANCE"] + " " + os.environ["PORT"] + "\\n")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""


def _counted_app(app: App) -> None:
    app.write("web.py", COUNTED)
    app.manifest(f"""
        services:
          web:
            command: [{PY}, web.py]
            replicas: 2
            health: {{http: /}}
          after:
            command: [{PY}, web.py]
            depends_on: [web]
            health: {{http: /}}
    """)


def _starts(app: App) -> list[str]:
    path = app.root / "starts.log"
    return path.read_text().split("\n")[:-1] if path.exists() else []


def _blocked(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(text.split("SigBlk:")[1].split()[0], 16)


def _web_processes(app: App) -> list[psutil.Process]:
    """Every `web.py` process running in the app's folder, whoever owns it."""
    return [p for p in psutil.process_iter(["cwd", "cmdline"])
            if p.info["cwd"] == str(app.root) and "web.py" in " ".join(p.info["cmdline"] or [])]


def _live_pids(app: App) -> dict[str, int]:
    return {
        str(i["id"]): int(i["pid"])
        for s in app.ps()["services"]  # type: ignore[attr-defined]
        for i in s["instances"]
    }


def test_a_warm_start_starts_each_replica_once_before_the_runtime_loads(app: App) -> None:
    _counted_app(app)
    _up(app)
    _restart(app)
    (app.root / "starts.log").unlink()
    _up(app)
    assert "(2 replicas started early)" in _log(app)  # web's; `after` waits for web
    starts = _starts(app)
    assert sorted(s.split()[0] for s in starts) == ["after-0", "web-0", "web-1"]
    ports = {s.split()[0]: int(s.split()[1]) for s in starts}
    web = app.service("web")
    assert {i["id"]: i["port"] for i in web["instances"]} == {  # type: ignore[attr-defined]
        "web-0": ports["web-0"], "web-1": ports["web-1"]}
    runtime = app.track_runtime()
    assert runtime is not None
    procs = [psutil.Process(pid) for pid in _live_pids(app).values()]
    for proc in procs:  # no stop signal blocked: `lsq down` ends them at once
        assert _blocked(proc.pid) & ((1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGINT - 1))) == 0
    assert app.lsq("down", "--timeout", "5").returncode == 0
    assert_all_gone([runtime, *procs], timeout=1)


def test_a_warm_start_loads_neither_the_schema_nor_the_event_loop_first() -> None:
    # A runtime forked from the cache runs `_warm.begin` before it loads the
    # schema (pydantic) and asyncio, some 70 ms that would otherwise come
    # before the first service starts: nothing it imports may pull them in.
    code = ("import sys, lsq.cli._early, lsq.cli._daemon, lsq.runtime._warm; print(sorted("
            "m for m in ('pydantic', 'lsq.manifest._schema', 'asyncio', 'ruamel.yaml') "
            "if m in sys.modules))")
    seen = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60)
    assert seen.stdout.strip() == "[]", seen.stdout + seen.stderr


def _maps_pydantic(pid: int) -> bool:
    """Has process `pid` loaded pydantic (its compiled core shows in its maps)?"""
    return "pydantic_core" in Path(f"/proc/{pid}/maps").read_text()


def test_a_detached_runtime_starts_the_app_without_importing_pydantic(app: App) -> None:
    # The CLI checks the manifest with the schema (pydantic) and hands the
    # runtime the app frozen (lsq.manifest._frozen): unpickling it and
    # starting the services must not load pydantic again, on a first start
    # (prestarted runtime) or a start from the cache. It used to cost the
    # runtime about 85 ms of CPU, paid in full on a repeat start.
    greeter_app(app)
    for first in (True, False):
        _up(app)
        assert _from_cache(app) is not first
        pid = app.runtime_pid()
        assert pid is not None
        assert _get(app) == "hello|one"
        assert not _maps_pydantic(pid)
        _restart(app)


def test_a_first_start_checks_the_manifest_without_importing_pydantic(app: App) -> None:
    # Every service of a first start waits for the CLI's check of the
    # manifest; the compiled schema (lsq.manifest._core) does it with
    # pydantic-core alone, about 0.07 s sooner than importing pydantic and
    # building the models. A bad manifest is still explained by the models.
    greeter_app(app)
    app.env["PYTHONPROFILEIMPORTTIME"] = "1"  # each import, to stderr
    result = app.lsq("up", "-d")
    app.track_runtime()
    assert result.returncode == 0, result.stdout + result.stderr
    imported = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert {"lsq.manifest._load", "lsq.manifest._core_schema"} <= imported
    # Of pydantic-core, only its compiled module, which loads outside the
    # import system (lsq.manifest._core._extension) and so is not listed.
    assert not {name for name in imported
                if name.split(".")[0] in ("pydantic", "pydantic_core", "typing_extensions")}
    assert not _from_cache(app)
    assert _get(app) == "hello|one"
    _restart(app)
    app.write("lsq.yaml", "services:\n  web:\n    command: [x]\n    replicas: two\n")
    result = app.lsq("up", "-d")
    assert result.returncode == 2
    assert "lsq.yaml:4:15: services.web.replicas: expected an integer" in result.stderr
    assert {"pydantic"} <= {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
                            if line.startswith("import time:")}


def test_lsq_up_in_the_foreground_runs_the_app_without_importing_pydantic(app: App) -> None:
    # The click command checks with the compiled schema too, and its runtime
    # reads the app frozen, as a detached one does.
    greeter_app(app)
    app.env["PYTHONPROFILEIMPORTTIME"] = "1"
    up = app.up()
    up.wait_ready()
    assert _get(app) == "hello|one"
    imported = {line.rsplit("|", 1)[1].strip() for line in up.output().splitlines()
                if line.startswith("import time:")}
    assert {"click", "lsq.manifest._core_schema", "uvloop"} <= imported
    assert not {name for name in imported if name.split(".")[0] == "pydantic"}
    up.send(signal.SIGINT)
    assert up.wait(15) == 0


def test_an_early_start_that_no_longer_matches_is_replaced(app: App) -> None:
    _counted_app(app)
    _up(app)
    _restart(app)
    (app.root / "starts.log").unlink()
    plan = app.state_dir() / "launch.json"
    data = json.loads(plan.read_text())
    for entry in data["starts"]:
        if entry["id"] == "web-1":
            entry["env"]["STALE"] = "1"  # not what web-1 would get now
    plan.write_text(json.dumps(data))
    _up(app)
    assert "its early start did not match" in app.lsq("logs").stdout + _log(app)
    names = sorted(s.split()[0] for s in _starts(app))
    # web-1 anew; the stale one may have been ended before it wrote its line.
    assert sorted(set(names)) == ["after-0", "web-0", "web-1"]
    assert names.count("after-0") == names.count("web-0") == 1 and names.count("web-1") in (1, 2)
    pids = _live_pids(app)
    assert all(psutil.pid_exists(p) for p in pids.values())
    environ = psutil.Process(pids["web-1"]).environ()
    assert "STALE" not in environ
    # The stale process is gone, not left running beside the new one.
    assert sorted(p.pid for p in _web_processes(app)) == sorted(pids.values())


def test_no_early_start_when_the_control_port_is_taken(app: App) -> None:
    _counted_app(app)
    _up(app)
    _restart(app)
    port = json.loads((app.state_dir() / "launch.json").read_text())["control_port"]
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
        holder.bind(("127.0.0.1", port))
        holder.listen()
        _up(app)
        assert "(0 replicas started early)" in _log(app)
        assert app.service("web")["health"] == "healthy"


@pytest.mark.parametrize("damage", ["no-env", "starts-null", "port-text", "not-json", "twice"])
def test_a_damaged_plan_is_ignored(app: App, damage: str) -> None:
    _counted_app(app)
    _up(app)
    _restart(app)
    plan = app.state_dir() / "launch.json"
    data = json.loads(plan.read_text())
    if damage == "no-env":
        del data["starts"][0]["env"]
    elif damage == "starts-null":
        data["starts"] = None
    elif damage == "port-text":
        data["control_port"] = "x"
    elif damage == "twice":
        data["starts"].append(data["starts"][0])
    plan.write_text("{not json" if damage == "not-json" else json.dumps(data))
    _up(app)
    assert "(0 replicas started early)" in _log(app)
    assert app.service("web")["health"] == "healthy"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_signal_during_a_warm_start_leaves_nothing(app: App, sig: int) -> None:
    # SIGTERM is noted until the runtime's loop takes it, then stops the app;
    # after SIGKILL the guard ends what it was told of and sweeps the rest.
    _counted_app(app)
    _up(app)
    _restart(app)
    before = _workers_of(app)
    for delay in (0.0, 0.03, 0.06, 0.1):
        cli = psutil.Popen([LSQ, "up", "-d"],
                           cwd=app.root, env=app.env, stdout=-1, stderr=-1)
        runtime = wait_for(lambda: [c for c in cli.children() if c.pid != cli.pid], 5,
                           "the forked runtime")[0]
        time.sleep(delay)
        seen = [runtime, *runtime.children(recursive=True)]
        runtime.send_signal(sig)
        cli.communicate(timeout=30)
        seen += runtime.children(recursive=True) if runtime.is_running() else []
        assert_all_gone(seen, timeout=15)
        # A replica started after `seen` was taken is ended by the guard, which
        # outlives the runtime by the sweep and its grace period.
        deadline = time.monotonic() + GRACE + 5
        while (services := _web_processes(app)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert services == [], f"left after signal {sig} at {delay}s: {services}"
    assert _workers_of(app) == before


def test_a_taken_ingress_port_is_refused_before_any_early_start(app: App) -> None:
    port = free_port()
    _counted_app(app)
    app.write("lsq.yaml", (app.root / "lsq.yaml").read_text() + f"gateway:\n  ingress_port: {port}\n")
    _up(app)
    _restart(app)
    (app.root / "starts.log").unlink()
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", port))
        holder.listen()
        result = app.lsq("up", "-d")
    assert result.returncode == 1
    assert f"gateway.ingress_port {port} is in use" in result.stderr
    assert _starts(app) == []  # nothing was started, not even early


def test_up_d_with_a_timeout_also_starts_from_the_cache(app: App) -> None:
    greeter_app(app)
    _up(app)
    _restart(app)
    result = app.lsq("up", "--timeout", "20", "-d")
    app.track_runtime()
    assert result.returncode == 0, result.stdout + result.stderr
    assert _from_cache(app)
    _restart(app)
    result = app.lsq("up", "-d", "web")  # a service list: the usual path
    app.track_runtime()
    assert result.returncode == 0, result.stdout + result.stderr
    assert not _from_cache(app)


def test_one_sigterm_during_start_up_is_one_graceful_stop(app: App) -> None:
    # A SIGTERM that came after the loop had started but before its signal
    # handlers were added was noted (lsq._signals) and also delivered to those
    # handlers: counted twice, it killed every service at once ("second
    # signal"), in about one first start in five.
    _counted_app(app)
    log = app.state_dir() / "runtime.log"
    for i in range(16):
        (app.state_dir() / "manifest.cache").unlink(missing_ok=True)
        cli = psutil.Popen([LSQ, "up", "-d"], cwd=app.root, env=app.env, stdout=-1, stderr=-1)
        runtime = wait_for(lambda: [c for c in cli.children() if c.pid != cli.pid], 5,
                           "the forked runtime")[0]
        time.sleep(0.02 * i)
        with contextlib.suppress(psutil.NoSuchProcess):
            runtime.send_signal(signal.SIGTERM)
        cli.communicate(timeout=30)
        app.lsq("down")  # a runtime forked again when the first died before it held signals
        assert_all_gone([runtime], timeout=15)
        text = log.read_text() if log.exists() else ""
        assert "second signal" not in text, f"at {0.02 * i:.2f}s: {text[-600:]}"
        log.unlink(missing_ok=True)
