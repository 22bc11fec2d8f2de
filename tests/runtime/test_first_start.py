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
import threading
import time
import urllib.request

import psutil
from rthelpers import LSQ, App, assert_all_gone, greeter_app, wait_for

from lsq.cli._daemon import PRESTART_NOTE


def _cli(app: App) -> psutil.Popen:
    return psutil.Popen([LSQ, "up", "-d"], cwd=app.root, env=app.env, stdout=-1, stderr=-1)


def _forked_runtime(cli: psutil.Popen) -> psutil.Process:
    found = wait_for(lambda: cli.children(), 10, "the runtime forked by lsq up -d")
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
    runtime = _forked_runtime(cli)
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


def test_a_runtime_killed_before_the_hand_over_is_replaced(app: App) -> None:
    fifo = _slow_app(app)
    cli = _cli(app)
    runtime = _forked_runtime(cli)
    runtime.kill()
    wait_for(lambda: runtime.status() == psutil.STATUS_ZOMBIE, 5, "the killed runtime to exit")
    _feed(fifo)
    out, err = cli.communicate(timeout=60)
    app.track_runtime()
    assert cli.returncode == 0, (out + err).decode()
    assert _runtime_pid(app) != runtime.pid
    assert PRESTART_NOTE not in (app.state_dir() / "runtime.log").read_text()
    assert _get(app) == "hello|one"


def test_ctrl_c_during_the_load_leaves_no_process_and_no_state(app: App) -> None:
    _slow_app(app)
    cli = _cli(app)
    runtime = _forked_runtime(cli)
    time.sleep(0.3)
    cli.send_signal(signal.SIGINT)
    _, err = cli.communicate(timeout=30)
    assert cli.returncode == 128 + signal.SIGINT, err.decode()
    assert "lsq: aborted" in err.decode()
    assert_all_gone([runtime], timeout=2)
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
    assert_all_gone(list(seen.values()), timeout=2)
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
