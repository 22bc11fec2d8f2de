"""A first `lsq up -d` (no manifest cache) forks its runtime before it loads
the manifest and hands the checked app over a pipe (`lsq.cli._daemon.prestart`):
the runtime loads its modules meanwhile, starts nothing before the app is
checked, and leaves nothing behind when the load fails or is aborted; one
that died meanwhile is replaced by a runtime forked as before.

The slow load is made with a FIFO as the service's `env_file`: the loader
blocks reading it until the test writes the file's text.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request

import psutil
import pytest
from rthelpers import GREETER, LSQ, PY, App, alive, free_port, greeter_app, wait_for

from lsq.cli._daemon import PRESTART_NOTE


def _default_sigint() -> None:
    # A test run started in the background may ignore SIGINT, and `lsq`
    # would rightly keep ignoring it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(app: App) -> psutil.Popen:
    cli = psutil.Popen([LSQ, "up", "-d"], cwd=app.root, env=app.env, stdout=-1, stderr=-1,
                       preexec_fn=_default_sigint)
    app.pids.append(cli)  # killed at the end if a failed test left it waiting
    return cli


def _forked_runtime(cli: psutil.Popen, app: App) -> psutil.Process:
    found = wait_for(lambda: cli.children(), 10, "the runtime forked by lsq up -d")
    app.pids.append(found[0])
    return found[0]  # type: ignore[no-any-return]


def _slow_app(app: App) -> str:
    """The greeter app, its web.env a FIFO: the load waits for `_feed`."""
    greeter_app(app, env_file=False)
    os.mkfifo(app.root / "web.env")
    return str(app.root / "web.env")


def _feed(fifo: str, text: str = "TOKEN=one\n") -> None:
    """Write the FIFO once the loader opens it (in a thread: the open blocks
    until then); fails if that does not happen within 15 s."""
    def write() -> None:
        with open(fifo, "w") as pipe:
            pipe.write(text)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    writer.join(15)
    assert not writer.is_alive(), "the manifest loader never read web.env"


def _runtime_pid(app: App) -> int:
    return int(json.loads((app.state_dir() / "runtime.json").read_text())["pid"])


def _get(app: App) -> str:
    address = str(app.service("web")["address"])
    with urllib.request.urlopen(address + "/", timeout=5) as answer:
        return answer.read().decode()


def _web_processes(app: App) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cwd", "cmdline"])
            if p.info["cwd"] == str(app.root) and "web.py" in " ".join(p.info["cmdline"] or [])]


def test_a_first_up_hands_the_checked_app_to_the_runtime_it_forked_first(app: App) -> None:
    greeter_app(app)
    result = app.lsq("up", "-d")
    app.track_runtime()
    assert result.returncode == 0, result.stdout + result.stderr
    log = (app.state_dir() / "runtime.log").read_text()
    assert PRESTART_NOTE in log
    assert "starting from .lsq/manifest.cache" not in log
    assert _get(app) == "hello|one"


def test_the_runtime_forked_first_starts_nothing_until_the_app_is_checked(app: App) -> None:
    fifo = _slow_app(app)
    cli = _cli(app)
    runtime = _forked_runtime(cli, app)
    time.sleep(0.5)  # time enough to load its modules, not to be given the app
    assert runtime.is_running() and runtime.children() == []
    assert not (app.state_dir() / "runtime.json").exists()
    assert _web_processes(app) == []
    _feed(fifo)
    out, err = cli.communicate(timeout=60)
    app.track_runtime()
    assert cli.returncode == 0, (out + err).decode()
    assert _runtime_pid(app) == runtime.pid
    assert _get(app) == "hello|one"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP])
def test_a_runtime_killed_before_the_hand_over_is_replaced(app: App, sig: int) -> None:
    fifo = _slow_app(app)
    cli = _cli(app)
    runtime = _forked_runtime(cli, app)
    time.sleep(0.3)
    runtime.send_signal(sig)
    wait_for(lambda: runtime.status() == psutil.STATUS_ZOMBIE, 5, "the killed runtime to exit")
    _feed(fifo)
    out, err = cli.communicate(timeout=60)
    app.track_runtime()
    assert cli.returncode == 0, (out + err).decode()
    assert _runtime_pid(app) != runtime.pid
    assert PRESTART_NOTE not in (app.state_dir() / "runtime.log").read_text()
    assert _get(app) == "hello|one"


def test_a_hang_up_the_cli_ignores_does_not_stop_the_app(app: App) -> None:
    # `nohup lsq up -d`, and the terminal closes while the manifest loads:
    # the hang-up reaches the whole process group and must not stop the
    # runtime once it has the app.
    fifo = _slow_app(app)
    cli = psutil.Popen(["nohup", LSQ, "up", "-d"], cwd=app.root, env=app.env,
                       stdout=-1, stderr=-1, start_new_session=True)
    app.pids.append(cli)
    _forked_runtime(cli, app)
    time.sleep(0.3)
    os.killpg(cli.pid, signal.SIGHUP)
    _feed(fifo)
    out, err = cli.communicate(timeout=60)
    app.track_runtime()
    assert cli.returncode == 0, (out + err).decode()
    time.sleep(0.5)  # a stop would come at once
    assert app.service("web")["health"] == "healthy"
    assert _get(app) == "hello|one"


def test_closed_standard_streams_and_inherited_descriptors(app: App) -> None:
    # No stdin, no stdout, and an extra descriptor on the caller's pipe: the
    # app still starts through the prestarted runtime, and the caller sees
    # the end of its pipe when `lsq up -d` exits, not when the app stops.
    greeter_app(app)
    read, write = os.pipe()
    cli = subprocess.Popen(
        ["bash", "-c", f"exec {LSQ} up -d <&- >&- 2>/dev/null 3>&{write}"],
        cwd=app.root, env=app.env, pass_fds=(write,),
    )
    os.close(write)
    app.pids.append(psutil.Process(cli.pid))
    assert cli.wait(timeout=60) == 0
    app.track_runtime()
    with os.fdopen(read, "rb") as pipe:
        ended = threading.Event()
        threading.Thread(target=lambda: (pipe.read(), ended.set()), daemon=True).start()
        assert ended.wait(5), "the runtime kept the caller's descriptor open"
    assert PRESTART_NOTE in (app.state_dir() / "runtime.log").read_text()
    assert _get(app) == "hello|one"


def test_a_caller_with_over_a_thousand_descriptors(app: App) -> None:
    # The CLI's own pipes then get descriptors above 1023, which select()
    # cannot watch; both a first start and one from the cache must work.
    greeter_app(app)
    script = f"ulimit -n 4096 && for fd in $(seq 3 1100); do eval \"exec $fd>/dev/null\"; done; exec {LSQ} up -d"
    for _ in ("first", "from the cache"):
        cli = subprocess.run(["bash", "-c", script], cwd=app.root, env=app.env,
                             capture_output=True, text=True, timeout=60)
        app.track_runtime()
        assert cli.returncode == 0, cli.stderr[-800:]
        assert "Traceback" not in cli.stderr
        assert _get(app) == "hello|one"
        assert app.lsq("down").returncode == 0


def test_two_first_starts_at_once_one_wins_and_the_other_says_why(app: App) -> None:
    greeter_app(app)
    clis = [subprocess.Popen([LSQ, "up", "-d"], cwd=app.root, env=app.env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    app.pids.extend(psutil.Process(c.pid) for c in clis)
    done = [(c.wait(timeout=60), *c.communicate()) for c in clis]
    app.track_runtime()
    codes = sorted(code for code, _, _ in done)
    assert codes == [0, 1], done
    _, out, err = next(d for d in done if d[0] == 1)
    errors = [line for line in err.splitlines() if line.startswith("lsq: error:")]
    assert len(errors) == 1 and "already running" in errors[0], err
    assert errors[0].count("lsq: error:") == 1, errors[0]
    # Only its own runtime's words: the winner's log lines are not quoted.
    assert "services are up" not in err + out and "(ingress)" not in err + out, err
    assert _get(app) == "hello|one"


def test_ctrl_c_during_the_load_leaves_no_process_and_no_state(app: App) -> None:
    _slow_app(app)
    cli = _cli(app)
    runtime = _forked_runtime(cli, app)
    time.sleep(0.3)
    cli.send_signal(signal.SIGINT)
    _, err = cli.communicate(timeout=30)
    assert cli.returncode == 128 + signal.SIGINT, err.decode()
    assert "lsq: aborted" in err.decode()
    assert not runtime.is_running()  # ended and reaped before the CLI exited
    assert not app.state_dir().exists()


def test_a_bad_manifest_on_a_first_up_leaves_no_process_and_no_state(app: App) -> None:
    app.manifest("""
        services:
          web:
            command: [python3, web.py]
            bogus: 1
    """)
    cli = _cli(app)
    seen: dict[int, psutil.Process] = {}
    while cli.poll() is None:
        for kid in cli.children():
            seen.setdefault(kid.pid, kid)
        time.sleep(0.002)
    err = cli.communicate(timeout=10)[1].decode()
    assert cli.returncode == 2, err
    assert err.startswith("lsq: error: lsq.yaml:4:5: ") and err.count("\n") == 1, err
    assert seen, "no runtime was forked before the manifest was loaded"
    # Gone (and reaped) before the CLI exited, not some time later.
    assert not any(p.is_running() for p in seen.values())
    assert not app.state_dir().exists()


def test_garbage_collection_comes_back_once_start_up_is_over() -> None:
    # `lsq up -d` turns the collector off for start-up (lsq.cli.main); the
    # runtime calls this when start-up is over, or after COLLECT_AFTER.
    import gc

    from lsq.runtime._runtime import collect_garbage_again

    gc.disable()
    try:
        collect_garbage_again()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.enable()


def test_a_file_named_lsq_in_the_way_gets_one_error(app: App) -> None:
    greeter_app(app)
    app.write(".lsq", "not a folder\n")
    result = app.lsq("up", "-d")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "is a file" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


# -- replicas started as soon as the app is checked (lsq.runtime._env.first_plan)

def _mixed_app(app: App) -> None:
    """What may start early (`solo`, `pair` x2) and what may not: a
    dependent, a data store, a fixed port."""
    app.write("web.py", GREETER)
    fixed = free_port()
    app.manifest(f"""
        services:
          solo:
            command: [{PY}, web.py]
            env: {{GREETING: solo}}
            health: {{http: /}}
          pair:
            command: [{PY}, web.py]
            replicas: 2
            health: {{http: /}}
          after:
            command: [{PY}, web.py]
            depends_on: [solo]
            health: {{http: /}}
          stored:
            command: [{PY}, web.py]
            data: sqlite
            health: {{http: /}}
          pinned:
            command: [{PY}, web.py]
            port: {fixed}
            health: {{http: /}}
    """)


def _environ(pid: int) -> dict[str, str]:
    raw = psutil.Process(pid).environ()
    return dict(raw)


def test_a_first_up_starts_what_waits_for_nothing_before_the_runtime_has_loaded(app: App) -> None:
    _mixed_app(app)
    result = app.lsq("up", "-d")
    runtime = app.track_runtime()
    assert result.returncode == 0, result.stdout + result.stderr
    log = (app.state_dir() / "runtime.log").read_text()
    assert f"{PRESTART_NOTE}; 3 replicas started once it was checked" in log, log
    # Each was taken by its replica: none was started anew.
    assert "did not match" not in log
    events = app.lsq("logs", "--since", "1h").stdout
    assert "did not match" not in events
    assert runtime is not None
    port = json.loads((app.state_dir() / "runtime.json").read_text())["port"]
    for name in ("solo", "pair", "after", "stored", "pinned"):
        svc = app.service(name)
        assert svc["health"] == "healthy", svc
        for inst in svc["instances"]:  # type: ignore[union-attr]
            env = _environ(int(inst["pid"]))
            # The environment the supervisor gives it, the runtime's own
            # trace receiver included (the plan only had a placeholder).
            assert env["LSQ_INSTANCE"] == inst["id"]
            assert env["PORT"] == str(inst["port"])
            assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith(f"http://127.0.0.1:{port}/otlp/")
            assert psutil.Process(int(inst["pid"])).ppid() == runtime.pid


def test_a_service_env_naming_the_trace_endpoint_keeps_it(app: App) -> None:
    greeter_app(app)
    text = (app.root / "lsq.yaml").read_text().replace(
        "GREETING: hello", "GREETING: hello\n      OTEL_EXPORTER_OTLP_ENDPOINT: http://127.0.0.1:4318")
    (app.root / "lsq.yaml").write_text(text)
    result = app.lsq("up", "-d")
    app.track_runtime()
    assert result.returncode == 0, result.stdout + result.stderr
    log = (app.state_dir() / "runtime.log").read_text()
    assert "1 replicas started once it was checked" in log and "did not match" not in log
    pid = int(app.service("web")["instances"][0]["pid"])  # type: ignore[index]
    assert _environ(pid)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"


def _held_after_the_plan(app: App) -> psutil.Popen:
    """`lsq up -d` held after it sent the plan: the manifest cache's temporary
    file is a FIFO, whose open blocks until `_release` reads it."""
    greeter_app(app)
    app.state_dir().mkdir()
    os.mkfifo(app.state_dir() / "manifest.cache.tmp")
    return _cli(app)


def _release(app: App) -> None:
    """Let `lsq up -d` write its cache through the FIFO, then put what it
    wrote in place of the FIFO it renamed (the runtime reads the cache once
    the app is up)."""
    state = app.state_dir()

    def read() -> None:
        with open(state / "manifest.cache.tmp", "rb") as pipe:
            data = pipe.read()
        wait_for(lambda: (state / "manifest.cache").exists(), 10, "the cache to be renamed")
        (state / "cache.copy").write_bytes(data)
        os.replace(state / "cache.copy", state / "manifest.cache")

    threading.Thread(target=read, daemon=True).start()


def _early_web(runtime: psutil.Process) -> psutil.Process:
    found = wait_for(lambda: [p for p in runtime.children() if "web.py" in " ".join(p.cmdline())],
                     15, "the early start of web")
    return found[0]  # type: ignore[no-any-return]


def test_a_runtime_killed_after_its_early_starts_leaves_none_and_is_replaced(app: App) -> None:
    cli = _held_after_the_plan(app)
    runtime = _forked_runtime(cli, app)
    web = _early_web(runtime)
    app.pids.append(web)
    runtime.kill()
    # Its guard ends what it started.
    wait_for(lambda: not alive(web), 10, "the early start to end with its runtime")
    _release(app)
    out, err = cli.communicate(timeout=60)
    app.track_runtime()
    assert cli.returncode == 0, (out + err).decode()
    assert _runtime_pid(app) != runtime.pid
    assert _get(app) == "hello|one"
    assert [p.pid for p in _web_processes(app)] == [int(app.service("web")["instances"][0]["pid"])]  # type: ignore[index]


def test_ctrl_c_after_the_early_starts_leaves_no_process(app: App) -> None:
    cli = _held_after_the_plan(app)
    runtime = _forked_runtime(cli, app)
    web = _early_web(runtime)
    app.pids.append(web)
    cli.send_signal(signal.SIGINT)
    _, err = cli.communicate(timeout=30)
    assert cli.returncode == 128 + signal.SIGINT, err.decode()
    # All ended before the CLI exited, and the lock is free: starting again
    # at once works (it used to find the guard holding the lock).
    assert not runtime.is_running()
    assert not alive(web)
    assert _web_processes(app) == []
    assert not (app.state_dir() / "runtime.json").exists()
    (app.state_dir() / "manifest.cache.tmp").unlink()
    again = app.lsq("up", "-d")
    app.track_runtime()
    assert again.returncode == 0, again.stdout + again.stderr
    assert _get(app) == "hello|one"
