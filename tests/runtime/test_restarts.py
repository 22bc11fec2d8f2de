"""Restarts: back-off growth, the retry limit, and commands that cannot run
(B10, B11)."""

from __future__ import annotations

import re
import time

import psutil
import pytest
from rthelpers import PY, App, instance_states, wait_for


def _delays(output: str, instance: str) -> list[float]:
    return [
        float(d)
        for d in re.findall(
            rf"{instance}: backoff: .*?restarting in ([\d.]+)s", output
        )
    ]


# A service that crashes at once, with back-off base 0.5 s and cap 4 s.
CRASHING = """
    services:
      crash:
        command: echo boom >&2; exit 1
        restart: {backoff: 0.5s, backoff_max: 4s}
"""


def test_a_crash_loop_backs_off_with_growing_delays(app: App) -> None:
    # B10, watched for ~12 s with base 0.5 s and cap 4 s instead of 30 s.
    app.manifest(CRASHING)
    up = app.up()
    up.wait_output("crash-0: backoff")
    runtime = psutil.Process(up.pid)
    cpu_before = sum(runtime.cpu_times()[:2])
    time.sleep(12)

    svc = app.service("crash")
    cpu = sum(runtime.cpu_times()[:2]) - cpu_before
    delays = _delays(up.output(), "crash-0")
    restarts = svc["instances"][0]["restarts"]  # type: ignore[index]

    assert 3 <= len(delays) <= 7, delays
    assert 3 <= restarts <= 7, restarts
    assert delays[:4] == sorted(delays[:4]) and delays[3] > 2 * delays[0], delays
    assert max(delays) <= 4.0
    assert cpu < 4, f"lsq used {cpu:.1f}s of CPU in 12s"

    # It spends most of its time waiting, so `lsq ps` soon catches a back-off.
    def in_backoff() -> dict[str, object] | None:
        svc = app.service("crash")
        return svc if svc["state"] == "crash-loop" else None

    svc = wait_for(in_backoff, 10, "crash-loop in lsq ps --json")  # type: ignore[assignment]
    inst = svc["instances"][0]  # type: ignore[index]
    assert inst["state"] == "backoff" and inst["last_exit"] == 1
    assert inst["next_retry"] > time.time() - 1
    assert "exit code 1" in inst["reason"] and "boom" in inst["reason"]

    def table() -> str:
        out = app.lsq("ps").stdout
        return out if "crash-loop" in out else ""

    text = str(wait_for(table, 10, "crash-loop in lsq ps"))
    assert "exit code 1" in text and "next retry in" in text
    assert not re.search(r"restart(ing)? (\d+ )?in", text)  # one countdown, the live one
    # Only the RESTARTS column counts: no number in the detail runs ahead of it.
    assert not re.search(r"restart \d|crashes in a row", text), text


@pytest.mark.parametrize("runs_for", [0, 2])
def test_max_restarts_is_honoured_exactly(app: App, runs_for: int) -> None:
    # B11: the immediate exit and the exit after 2 s count the same way.
    app.manifest(f"""
        services:
          flaky:
            command: [{PY}, -c, "import sys, time; print('run', flush=True); time.sleep({runs_for}); sys.exit(1)"]
            restart: {{max_restarts: 3, backoff: 0.2s, backoff_max: 0.5s}}
          steady:
            command: [{PY}, -c, "import time; time.sleep(300)"]
    """)
    up = app.up()
    up.wait_output("flaky-0: failed", timeout=30)
    time.sleep(1)  # a fourth restart, if any, would show now

    flaky = app.service("flaky")
    inst = flaky["instances"][0]  # type: ignore[index]
    assert flaky["state"] == "failed"
    assert inst["restarts"] == 3
    assert (
        "max_restarts: 3" in inst["reason"]
        and "gave up after 3 restarts" in inst["reason"]
    )
    assert inst["pid"] is None
    assert up.output().count("flaky-0: starting") == 4
    logs = app.logs("flaky", until="run")
    assert logs.count("| run") == 4
    assert instance_states(app.service("steady")) == ["running"]


def test_a_command_that_does_not_exist_fails_that_service_only(app: App) -> None:
    app.manifest(f"""
        services:
          ok:
            command: [{PY}, -c, "import time; time.sleep(300)"]
          argv:
            command: [does-not-exist-lsq-test, --flag]
          shell:
            command: does-not-exist-lsq-test --flag
    """)
    result = app.lsq("up", "-d", "--timeout", "20")
    app.track_runtime()

    assert result.returncode == 1
    assert "start-up failed" in result.stderr and "not found" in result.stderr
    wait_for(lambda: app.service("shell")["state"] == "failed", 10, "shell to fail")
    for name in ("argv", "shell"):
        svc = app.service(name)
        assert svc["state"] == "failed"
        reason = svc["instances"][0]["reason"]  # type: ignore[index]
        assert "not found" in reason and "does-not-exist-lsq-test" in reason, reason
    assert app.service("shell")["instances"][0]["last_exit"] == 127  # type: ignore[index]
    assert instance_states(app.service("ok")) == ["running"]


def test_up_detached_exits_1_with_the_reason_when_startup_fails(app: App) -> None:
    app.manifest("""
        services:
          broken:
            command: echo "cannot open config" >&2; exit 3
            restart: {policy: "no"}
    """)
    result = app.lsq("up", "-d", "--timeout", "20")
    app.track_runtime()

    assert result.returncode == 1, result.stdout + result.stderr
    assert "start-up failed" in result.stderr
    assert "exit code 3" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_up_detached_reports_a_runtime_that_exits_during_startup(app: App) -> None:
    # The runtime dies before it can report an outcome (it cannot create a
    # service's PostgreSQL database: nothing listens on port 1): `up -d`
    # learns it from the closed pipe.
    app.env["LSQ_POSTGRES_URL"] = "postgresql://127.0.0.1:1/postgres"
    app.manifest(f"""
        services:
          web:
            command: [{PY}, -c, "import time; time.sleep(300)"]
            data: postgres
    """)
    started = time.monotonic()
    result = app.lsq("up", "-d", "--timeout", "60", timeout=70)
    elapsed = time.monotonic() - started

    assert result.returncode == 1, result.stdout + result.stderr
    assert elapsed < 20, f"up -d took {elapsed:.1f}s to see the runtime exit"
    assert "the runtime exited with code 1" in result.stderr
    assert "cannot create its PostgreSQL database" in result.stderr
    assert app.runtime_pid() is None


def test_up_detached_reports_a_crash_loop_without_waiting_for_the_deadline(
    app: App,
) -> None:
    app.manifest("""
        services:
          crash:
            command: echo "missing setting" >&2; exit 1
            restart: {backoff: 0.2s, backoff_max: 0.5s}
            startup_timeout: 120s
    """)
    started = time.monotonic()
    result = app.lsq("up", "-d", "--timeout", "60", timeout=70)
    elapsed = time.monotonic() - started
    app.track_runtime()

    assert result.returncode == 1, result.stdout + result.stderr
    assert elapsed < 20, f"up -d took {elapsed:.1f}s to report the crash loop"
    assert "crash-0 keeps crashing (3 restarts" in result.stderr
    assert "missing setting" in result.stderr


def test_the_back_off_stays_at_its_cap_however_long_a_service_crashes() -> None:
    # A service that crashes all night reaches attempt 1024 and more; the
    # delay must stay at the cap instead of overflowing, which used to end
    # the replica's supervision and leave it shown as "starting".
    from lsq.runtime._supervisor import backoff_delay

    for attempt in (0, 1, 10, 1023, 1024, 5000, 10**6):
        delay = backoff_delay(attempt, 0.01, 0.02)
        assert 0 < delay <= 0.02, (attempt, delay)
    assert 0.8 <= backoff_delay(0, 1.0, 30.0) <= 1.2


def test_a_command_that_cannot_run_is_described_by_what_is_wrong(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from lsq.runtime._supervisor import cannot_run

    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n")
    cases = {
        ("/nonexistent/prog", FileNotFoundError): "'/nonexistent/prog' not found",
        ("./missing.sh", FileNotFoundError): f"'{tmp_path}/missing.sh' not found",
        ("no-such-tool", FileNotFoundError): "command 'no-such-tool' not found on PATH",
        (str(tmp_path), PermissionError): "is a folder, not a program",
        ("./run.sh", PermissionError): "is not executable (chmod +x it",
    }
    for (program, error), expected in cases.items():
        text = cannot_run([program, "x"], tmp_path, error(13, "Permission denied"))
        assert expected in text, (program, text)
        assert "on PATH or in" not in text


def test_restart_of_a_crashing_service_says_so_at_once(app: App) -> None:
    # `lsq restart` waits for each replica to be healthy again; one that
    # crashes again ends the wait with the reason, not a 30 s time-out.
    app.manifest(CRASHING + f"""
      steady:
        command: [{PY}, -c, "import time; time.sleep(300)"]
""")
    up = app.up()
    up.wait_output("crash-0: backoff")
    started = time.monotonic()
    done = app.lsq("restart", "crash")
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    assert "crash-0 crashed after its restart" in done.stderr and "boom" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert elapsed < 10, f"lsq restart took {elapsed:.1f}s"
    assert app.lsq("restart", "steady").returncode == 0  # the runtime still answers

