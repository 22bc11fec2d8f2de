"""Stopping `lsq up`: signals from outside, Ctrl-C, a closed terminal, `lsq down`,
and a runtime killed with SIGKILL (B01, B02, B04, B05, B07, B08)."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import psutil
import pytest
from rthelpers import (
    LSQ,
    PY,
    App,
    alive,
    assert_all_gone,
    free_port,
    port_free,
    wait_for,
)

from lsq.runtime._info import _lock_held

SERVER = """
import http.server, os
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])),
                       http.server.SimpleHTTPRequestHandler).serve_forever()
"""

IGNORE_TERM = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ignoring SIGTERM", flush=True)
while True:
    time.sleep(1)
"""


def test_sigterm_to_lsq_stops_a_compound_shell_line_and_frees_its_port(
    app: App,
) -> None:
    # B01: the shell stays as a wrapper (two commands), the server is its child.
    port = free_port()
    app.write("server.py", SERVER)
    app.manifest(f"""
        services:
          web:
            command: GREETING=hi; {PY} server.py; echo after
            port: {port}
            health: {{tcp: true}}
    """)
    up = app.up()
    up.wait_ready()
    procs = up.remember()
    assert any("server.py" in " ".join(p.cmdline()) for p in procs)
    assert not port_free(port)

    up.send(signal.SIGTERM)

    assert up.wait(15) == 0
    assert "got SIGTERM" in up.output()
    assert_all_gone(procs)
    assert port_free(port)
    assert not (app.state_dir() / "runtime.json").exists()


RUN_SH = """
#!/bin/sh
sleep 300 &
HELPER=$!
echo $HELPER > helper.pid
trap 'echo trapped > marker; kill $HELPER; exit 0' TERM
echo "wrapper ready"
wait
"""


def test_ctrl_c_reaches_a_wrapper_scripts_term_trap(app: App) -> None:
    # B02
    app.write("run.sh", RUN_SH, mode=0o755)
    app.manifest("""
        services:
          job:
            command: ./run.sh
            stop_timeout: 8s
    """)
    up = app.up()
    up.wait_ready()
    up.wait_output("wrapper ready")
    helper = psutil.Process(
        int(
            wait_for(
                lambda: (app.root / "helper.pid").read_text().strip(), 5, "helper.pid"
            )
        )
    )
    procs = up.remember()

    started = time.monotonic()
    up.send(signal.SIGINT)
    assert up.wait(15) == 0
    elapsed = time.monotonic() - started

    assert (app.root / "marker").read_text().strip() == "trapped"
    assert elapsed < 8, f"shutdown took {elapsed:.1f}s, more than stop_timeout"
    assert "killed with SIGKILL" not in up.output()
    assert_all_gone([helper, *procs])


def test_a_service_ignoring_sigterm_is_killed_after_stop_timeout(app: App) -> None:
    # B04
    app.write("stubborn.py", IGNORE_TERM)
    app.manifest(f"""
        services:
          stubborn:
            command: [{PY}, stubborn.py]
            stop_timeout: 2s
    """)
    up = app.up()
    up.wait_ready()
    up.wait_output("ignoring SIGTERM")
    procs = up.remember()

    started = time.monotonic()
    up.send(signal.SIGINT)
    assert up.wait(15) == 0
    elapsed = time.monotonic() - started

    assert 1.8 <= elapsed < 6, f"shutdown took {elapsed:.2f}s; expected about 2s"
    assert "killed with SIGKILL after stop_timeout 2s" in up.output()
    assert_all_gone(procs)


def test_second_ctrl_c_kills_everything_at_once(app: App) -> None:
    # B05
    app.write("stubborn.py", IGNORE_TERM)
    app.manifest(f"""
        services:
          one:
            command: [{PY}, stubborn.py]
            stop_timeout: 60s
          two:
            command: [{PY}, stubborn.py]
            stop_timeout: 60s
    """)
    up = app.up()
    up.wait_ready()
    procs = up.remember()

    up.send(signal.SIGINT)
    first = up.wait_output("stopping gracefully")
    assert "Ctrl-C again" in first
    time.sleep(1)
    assert up.proc.poll() is None, "lsq stopped before the 60s stop_timeout"
    started = time.monotonic()
    up.send(signal.SIGINT)
    code = up.wait(10)
    elapsed = time.monotonic() - started

    assert code != 0
    assert elapsed < 3, f"lsq took {elapsed:.1f}s to exit after the second Ctrl-C"
    assert_all_gone(procs, timeout=3)


def test_ctrl_c_during_startup_stops_at_once_and_skips_dependents(app: App) -> None:
    # B07: a's health check never passes (nothing listens), b waits for it.
    app.manifest(f"""
        services:
          a:
            command: [{PY}, -c, "import time; time.sleep(300)"]
            port: {free_port()}
            health: {{tcp: true}}
          b:
            command: [{PY}, -c, "print('b started', flush=True); import time; time.sleep(300)"]
            depends_on: [a]
    """)
    up = app.up()
    up.wait_output("waits for a to be healthy")
    procs = up.remember()
    assert procs

    started = time.monotonic()
    up.send(signal.SIGINT)
    assert up.wait(15) == 0
    elapsed = time.monotonic() - started

    assert elapsed < 8, f"Ctrl-C during start-up took {elapsed:.1f}s"
    out = up.output()
    assert "b started" not in out and "b-0: starting" not in out
    assert_all_gone(procs)


def _up_in_pty(app: App) -> tuple[subprocess.Popen[bytes], int]:
    master, slave = os.openpty()

    def take_terminal() -> None:
        # The child is a session leader (start_new_session); make the pty its
        # controlling terminal so that closing the master hangs it up.
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [LSQ, "up"],
        cwd=app.root,
        env=app.env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        # Only a function run in the child can take the terminal; it calls
        # nothing that a lock held by another thread could block.
        preexec_fn=take_terminal,  # noqa: PLW1509
    )
    os.close(slave)
    return proc, master


def _read_until(master: int, text: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    os.set_blocking(master, False)
    while text not in seen:
        assert time.monotonic() < deadline, f"no {text!r} on the terminal: {seen!r}"
        try:
            seen += os.read(master, 65536)
        except BlockingIOError:
            time.sleep(0.05)
    return seen


def test_closing_the_terminal_stops_everything_and_a_new_up_works(app: App) -> None:
    # B08
    port = free_port()
    app.write("server.py", SERVER)
    app.manifest(f"""
        services:
          web:
            command: {PY} server.py
            port: {port}
            health: {{tcp: true}}
    """)
    proc, master = _up_in_pty(app)
    try:
        _read_until(master, b"services are up", 15)
        runtime = psutil.Process(proc.pid)
        procs = runtime.children(recursive=True)
        app.pids.extend([runtime, *procs])

        os.close(master)  # the terminal goes away: SIGHUP to lsq
        master = -1
        proc.wait(15)
    finally:
        if master >= 0:
            os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert_all_gone(procs)
    assert port_free(port)

    again = app.lsq("up", "-d", "--timeout", "20")
    assert again.returncode == 0, again.stdout + again.stderr
    app.track_runtime()
    assert app.lsq("down").returncode == 0
    assert port_free(port)


def test_down_leaves_no_process_and_no_bound_port(app: App) -> None:
    port = free_port()
    app.write("server.py", SERVER)
    app.manifest(f"""
        services:
          web:
            command: {PY} server.py
            port: {port}
            health: {{http: /}}
          worker:
            command: sh -c 'sleep 300 & sleep 300'
    """)
    result = app.lsq("up", "-d", "--timeout", "20")
    assert result.returncode == 0, result.stdout + result.stderr
    runtime = app.track_runtime()
    assert runtime is not None
    procs = [runtime, *runtime.children(recursive=True)]
    assert len(procs) >= 5  # runtime, guard, server, worker shell and sleeps

    down = app.lsq("down")

    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout
    assert_all_gone(procs)
    assert port_free(port)
    assert not (app.state_dir() / "runtime.json").exists()


def test_a_killed_runtime_leaves_no_children_and_its_stale_state_is_taken_over(
    app: App,
) -> None:
    port = free_port()
    app.write("server.py", SERVER)
    app.manifest(f"""
        services:
          web:
            command: sh -c '{PY} server.py; true'
            port: {port}
            health: {{tcp: true}}
    """)
    assert app.lsq("up", "-d", "--timeout", "20").returncode == 0
    runtime = app.track_runtime()
    assert runtime is not None
    children = [p for p in runtime.children(recursive=True)]
    services = [
        p for p in children if "lsq.runtime._guard" not in " ".join(p.cmdline())
    ]
    assert services

    runtime.kill()
    runtime.wait(5)

    assert_all_gone(children, timeout=8)  # the guard ends the groups, then itself
    assert port_free(port)
    assert (app.state_dir() / "runtime.json").exists()
    ps = app.lsq("ps")
    assert ps.returncode == 1 and "no runtime is running" in ps.stderr

    again = app.lsq("up", "-d", "--timeout", "20")
    assert again.returncode == 0, again.stdout + again.stderr
    app.track_runtime()
    assert (
        json.loads((app.state_dir() / "runtime.json").read_text())["pid"] != runtime.pid
    )
    log = (app.state_dir() / "runtime.log").read_text()
    assert f"stale state of runtime pid {runtime.pid}" in log
    assert app.lsq("down").returncode == 0
    assert port_free(port)
    assert not any(alive(p) for p in children)


def _up_one(app: App, name: str, source: str, extra: str = "") -> psutil.Process:
    """`lsq up -d` of one service running `source`; its runtime."""
    app.write(f"{name}.py", source)
    app.manifest(f"services:\n  {name}:\n    command: {PY} {name}.py\n    {extra}\n")
    assert app.lsq("up", "-d", "--timeout", "20").returncode == 0
    runtime = app.track_runtime()
    assert runtime is not None
    return runtime


def test_an_up_right_after_the_runtime_was_killed_waits_for_its_guard(app: App) -> None:
    # The guard holds the app's lock while it ends what the dead runtime
    # started (here for its whole grace period: the service ignores SIGTERM).
    # `lsq up -d` meanwhile waits for it, instead of taking the dead runtime
    # for a live one.
    runtime = _up_one(app, "stubborn", IGNORE_TERM)
    old = [p for p in runtime.children() if "stubborn.py" in " ".join(p.cmdline())]
    assert len(old) == 1
    runtime.kill()  # not waited for: it may stay a zombie for a while
    wait_for(lambda: _lock_held(app.state_dir()), 2, "the guard to take the lock")

    again = app.lsq("up", "-d", "--timeout", "20")
    assert again.returncode == 0, again.stdout + again.stderr
    assert not alive(old[0])
    assert app.track_runtime() is not None
    assert app.service("stubborn")["state"] == "running"
    assert app.lsq("down").returncode == 0


def _guard_of(runtime: psutil.Process) -> psutil.Process | None:
    """The runtime's live guard. A killed one stays a zombie until the runtime
    reaps it: it has no command line then, and is not the guard any more."""
    for child in runtime.children():
        try:
            if "lsq/runtime/_guard.py" in " ".join(child.cmdline()):
                return child
        except psutil.Error:  # a zombie, or gone meanwhile
            continue
    return None


def test_a_killed_guard_is_replaced_and_the_new_one_still_ends_every_group(
    app: App,
) -> None:
    # Services have no parent-death signal: the guard alone ends them when
    # the runtime dies, so a guard killed by someone must be replaced.
    app.manifest(f"""
        services:
          worker:
            command: sh -c '{PY} -c "import time; time.sleep(300)" & sleep 300'
    """)
    assert app.lsq("up", "-d", "--timeout", "20").returncode == 0
    runtime = app.track_runtime()
    assert runtime is not None
    first = wait_for(lambda: _guard_of(runtime), 5, "the guard")
    services = [p for p in runtime.children(recursive=True) if p.pid != first.pid]
    assert len(services) >= 3  # the shell, the python child and the sleep

    first.kill()
    second = wait_for(
        lambda: (g := _guard_of(runtime)) is not None and g.pid != first.pid and g,
        5,
        "a new guard",
    )
    runtime.kill()
    runtime.wait(5)

    assert_all_gone(services, timeout=8)
    assert_all_gone([second], timeout=8)
    log = (app.state_dir() / "runtime.log").read_text()
    assert f"started another, pid {second.pid}" in log


def test_what_an_exited_service_left_behind_is_ended(app: App) -> None:
    # The leader exits; a background child it started in its group would
    # otherwise keep the port and the output pipe.
    port = free_port()
    app.write("server.py", SERVER)
    app.manifest(f"""
        services:
          leaky:
            command: PORT={port} {PY} server.py & echo $! > child.pid; sleep 1; exit 1
            restart: "no"
    """)
    up = app.up()
    up.wait_output("leaky-0: failed", timeout=15)
    child = int((app.root / "child.pid").read_text())

    def ended() -> bool:
        try:
            return psutil.Process(child).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_for(ended, 8, "the background child to end")
    assert port_free(port)
    assert "exit code 1" in up.output()


def test_a_second_up_for_the_same_app_is_refused(app: App) -> None:
    app.manifest(f"""
        services:
          web:
            command: [{PY}, -c, "import time; time.sleep(300)"]
    """)
    assert app.lsq("up", "-d", "--timeout", "20").returncode == 0
    runtime = app.track_runtime()
    assert runtime is not None

    for args in (("up",), ("up", "-d")):
        again = app.lsq(*args)
        assert again.returncode == 1, args
        assert f"already running (runtime pid {runtime.pid})" in again.stderr
    assert alive(runtime)


def test_down_waits_for_a_runtime_that_holds_the_lock_but_is_still_starting(app: App) -> None:
    # Between taking the app's lock and writing runtime.json a runtime is
    # starting (data stores, the control API): `lsq down` then must wait for
    # it instead of answering "nothing is running" and letting the app come
    # up. The test holds the lock itself, as that runtime would.
    app.manifest(f"""
        services:
          web:
            command: [{PY}, -c, "import time; time.sleep(300)"]
    """)
    app.state_dir().mkdir()
    fd = os.open(app.state_dir() / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    down = subprocess.Popen([LSQ, "down"], cwd=app.cwd, env=app.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1.5)
        assert down.poll() is None, "lsq down gave up on a starting runtime"
    finally:
        os.close(fd)  # the "runtime" exits without ever being up
    out, err = down.communicate(timeout=20)
    assert down.returncode == 0 and "nothing is running" in out, out + err


def test_a_lock_probe_does_not_make_a_starting_runtime_give_up(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # `lsq down` and `lsq ps` test the app's lock by taking it for an
    # instant; a runtime starting at that instant used to fail with
    # "already running".
    from lsq.runtime._lock import AppLock

    fd = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    threading.Timer(0.05, os.close, (fd,)).start()  # a probe lets go
    lock = AppLock(tmp_path)
    lock.acquire()
    lock.release()


def test_health_commands_that_time_out_leave_no_zombies(app: App) -> None:
    # A shell health command killed at its timeout used to leave what it
    # started running; those processes were reparented to the runtime (a
    # subreaper), became zombies when they ended, one more at every probe,
    # and were reported at shut-down as having "left their service's group".
    app.manifest(f"""
        services:
          web:
            command: [{PY}, -c, "import time; time.sleep(300)"]
            health: {{command: "sleep 1.5; true", interval: 200ms, timeout: 300ms}}
    """)
    up = app.up()
    pid = wait_for(app.runtime_pid, 20, "runtime.json")
    runtime = psutil.Process(pid)
    time.sleep(3.5)  # about ten probes timed out

    def zombies_and_sleepers() -> tuple[set[int], set[int]]:
        kids = runtime.children()
        return ({k.pid for k in kids if k.status() == psutil.STATUS_ZOMBIE},
                {k.pid for k in kids if k.name() == "sleep"})

    # A probe's `sleep` killed at this very instant may not be collected yet;
    # one still there a moment later was left behind.
    first = zombies_and_sleepers()
    time.sleep(0.3)
    second = zombies_and_sleepers()
    zombies, sleepers = first[0] & second[0], first[1] & second[1]
    assert not zombies and len(sleepers) <= 1, (first, second)
    up.send(signal.SIGTERM)
    assert up.wait() == 0
    assert "left their service's group" not in up.output()


def _unregistered_service(app_dir: Path) -> subprocess.Popen[bytes]:
    """A service of the app that the guard was never told of (its start was
    cut short before the runtime could tell it)."""
    env = dict(os.environ, LSQ_APP_DIR=str(app_dir), LSQ_INSTANCE="web-0")
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            env=env, start_new_session=True)


_RUNTIME_WITH_A_GUARD = """
import sys, time
from pathlib import Path
from lsq.runtime._lock import GuardProcess
print(GuardProcess(app_dir=Path(sys.argv[1])).pid, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("lock_held", ["no", "a moment", "yes"])
def test_the_guard_sweeps_services_it_was_not_told_of(tmp_path: Path, lock_held: str) -> None:
    from lsq.runtime._lock import AppLock

    (tmp_path / ".lsq").mkdir()
    (tmp_path / ".lsq" / "lock").touch()
    service = _unregistered_service(tmp_path)
    other = _unregistered_service(tmp_path / "another-app")
    runtime = subprocess.Popen([PY, "-c", _RUNTIME_WITH_A_GUARD, str(tmp_path)],
                               stdout=subprocess.PIPE, text=True)
    assert runtime.stdout is not None
    guard = psutil.Process(int(runtime.stdout.readline()))
    lock = AppLock(tmp_path / ".lsq")
    if lock_held != "no":  # a new runtime of the app runs: those are its services
        lock.acquire()
    try:
        time.sleep(0.5)  # the guard is up (it starts in some 30 ms) and reads its pipe
        runtime.kill()
        runtime.wait()
        if lock_held == "a moment":
            # A start the killed runtime had under way: forked, it holds a
            # copy of the lock until it closes what it was not given. A guard
            # that asked only once swept nothing, and that start ran unowned.
            time.sleep(0.3)
            lock.release()
        guard.wait(timeout=10)
        if lock_held == "yes":
            assert service.poll() is None
        else:
            assert service.wait(timeout=5) == -signal.SIGTERM
        assert other.poll() is None  # another app's service is left alone
    finally:
        lock.release()
        runtime.stdout.close()
        for proc in (service, other):
            proc.kill()
            proc.wait()


def test_a_guard_ending_a_runtime_that_left_no_info_is_waited_for(tmp_path: Path) -> None:
    # The runtime died before it wrote runtime.json: only the guard's
    # `sweeping` file tells its lock from a runtime starting up. Whoever asks
    # whether the app runs (`lsq up`, `ps`, `down`) waits for the guard.
    from lsq.runtime._guard import SWEEPING
    from lsq.runtime._info import read_runtime_info
    from lsq.runtime._lock import GuardProcess

    state = tmp_path / ".lsq"
    state.mkdir()
    (state / "lock").touch()
    env = dict(os.environ, LSQ_APP_DIR=str(tmp_path), LSQ_INSTANCE="web-0")
    stubborn = subprocess.Popen([PY, "-c", IGNORE_TERM], env=env, start_new_session=True,
                                stdout=subprocess.PIPE)
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline()  # SIGTERM ignored
        guard = GuardProcess(app_dir=tmp_path)
        guard._pipe.close()  # as when the runtime is killed
        wait_for(lambda: (state / SWEEPING).exists(), 5, "the guard to start sweeping")
        assert read_runtime_info(state) is None
        assert stubborn.poll() == -signal.SIGKILL  # the guard was done
        guard._proc.wait(timeout=5)
        assert not (state / SWEEPING).exists()
    finally:
        stubborn.kill()
        stubborn.wait()
        stubborn.stdout.close()  # type: ignore[union-attr]


def test_a_stopped_runtime_is_named_as_such_at_once(app: App) -> None:
    # Its socket still takes connections: a request would wait out the
    # timeout, and be carried out whenever the runtime is resumed.
    runtime = _up_one(app, "web", SERVER, "health: {tcp: true}")
    runtime.suspend()
    try:
        for command in ("ps", "down"):
            started = time.monotonic()
            done = app.lsq(command)
            assert done.returncode == 1, done
            assert "is stopped (SIGSTOP or Ctrl-Z)" in done.stderr
            assert f"kill -CONT {runtime.pid}" in done.stderr
            assert time.monotonic() - started < 10
    finally:
        runtime.resume()
    time.sleep(0.5)  # nothing was queued: the app still runs
    assert app.service("web")["state"] == "running"
    assert app.lsq("down").returncode == 0
