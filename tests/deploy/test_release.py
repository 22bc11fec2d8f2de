"""Releases through the real runtime, under load (failure scenario B45).

Each test starts the versioned service with `lsq up -d`, sends 50 requests/s
(every 10th takes 2 s) through its stable address, changes the manifest and
runs `lsq deploy`, `lsq restart` or `lsq scale`, then checks every answer.
"""

from __future__ import annotations

import sqlite3
import time

from deploy_helpers import App
from load import Load


def _start(app: App, **manifest: object) -> Load:
    app.write(**manifest)  # type: ignore[arg-type]
    app.lsq("up", "-d", "--timeout", "30")
    host, port = app.address()
    return Load(host, port, rate=50, duration=25).start()


def _assert_no_failures(load: Load) -> None:
    failed = load.failed()
    assert load.outcomes, "the load generator sent nothing"
    assert not failed, f"{len(failed)} of {len(load.outcomes)} failed: {failed[:5]}"


def _versions_now(app: App) -> set[str]:
    return {i["version"] for i in app.instances()}


def test_blue_green_under_load_drops_nothing(app: App) -> None:
    load = _start(app, VERSION="one")
    time.sleep(1.5)
    app.write(VERSION="two")
    done = app.lsq("deploy", "web", "--strategy", "blue-green")
    switched = time.time()
    assert "all traffic on v2" in done.stdout
    app.wait_for(lambda: app.history()[0]["state"] == "succeeded", 20, "the old version to stop")
    time.sleep(1.5)
    load.stop()

    _assert_no_failures(load)
    before = load.versions()
    assert before["one"] > 0 and before["two"] > 0
    assert set(load.versions(since=switched + 0.5)) == {"two"}
    assert _versions_now(app) == {"v2"}
    release = app.history()[0]
    assert release["strategy"] == "blue-green" and release["previous"] == "v1"
    assert release["timings"]["healthy"] <= release["timings"]["switched"] <= release["timings"]["done"]


def test_canary_under_load_reaches_new_version_and_drops_nothing(app: App) -> None:
    load = _start(app, VERSION="one", strategy="canary")
    time.sleep(1.5)
    app.write(VERSION="two", strategy="canary")
    done = app.lsq("deploy", "web", "--steps", "25,50,100", "--step-time", "1s")
    finished = time.time()
    time.sleep(1.0)
    load.stop()

    _assert_no_failures(load)
    assert "succeeded" in done.stdout
    release = app.history()[0]
    assert release["state"] == "succeeded"
    steps = [a["step"] for a in release["analyses"] if a["result"] == "pass"]
    assert steps == [25, 50], release["analyses"]
    assert all(a["new"]["requests"] >= 10 for a in release["analyses"] if a["result"] == "pass")
    assert set(load.versions(since=finished)) == {"two"}
    assert _versions_now(app) == {"v2"}


def test_new_version_never_healthy_aborts_and_old_keeps_serving(app: App) -> None:
    load = _start(app, VERSION="one")
    before = {i["id"]: i["pid"] for i in app.instances()}
    time.sleep(1.0)
    app.write(VERSION="two", HEALTHY="0")
    done = app.lsq("deploy", "web", check=False, timeout=30)
    time.sleep(1.0)
    load.stop()

    assert done.returncode == 1, done.stdout + done.stderr
    assert "aborted" in done.stderr and "not healthy within 4s" in done.stderr
    _assert_no_failures(load)
    assert set(load.versions()) == {"one"}
    assert {i["id"]: i["pid"] for i in app.instances()} == before
    assert app.history()[0]["state"] == "aborted"


def test_canary_with_five_percent_errors_rolls_back(app: App) -> None:
    load = _start(app, VERSION="one", strategy="canary", min_requests=20)
    time.sleep(1.0)
    app.write(VERSION="two", ERROR_EVERY="20", strategy="canary", steps="[50, 100]",
              step_time="5s", min_requests=20)
    done = app.lsq("deploy", "web", check=False, timeout=40)
    back = time.time()
    time.sleep(1.5)
    load.stop()

    assert done.returncode == 1, done.stdout + done.stderr
    assert "rolled-back" in done.stderr and "analysis failed at 50%" in done.stderr
    release = app.history()[0]
    assert release["state"] == "rolled-back"
    failed = release["analyses"][-1]
    assert failed["result"] == "fail" and failed["new"]["errors"] >= 1
    assert failed["new"]["requests"] >= 20 and failed["old"]["requests"] >= 20
    assert release["timings"]["analysis_to_old"] < 5
    # Only the canary's own 500s reached clients, and none after the rollback.
    assert all(o.status == 500 and "two" in o.body for o in load.failed())
    assert set(load.versions(since=back)) == {"one"}
    assert _versions_now(app) == {"v1"}


def test_rolling_restart_and_scale_down_drop_nothing(app: App) -> None:
    load = _start(app, VERSION="one", replicas=3)
    before = {i["id"]: i["pid"] for i in app.instances()}
    time.sleep(1.0)
    app.lsq("restart", "web")
    after = {i["id"]: i["pid"] for i in app.instances()}
    app.lsq("scale", "web=1")
    time.sleep(1.0)
    load.stop()

    _assert_no_failures(load)
    assert set(after) == set(before) and all(after[k] != before[k] for k in before)
    assert [i["id"] for i in app.instances() if i["state"] == "running"] == ["web-0"]
    _assert_never_routable_while_stopping(app)


def _assert_never_routable_while_stopping(app: App) -> None:
    # A replica being drained must stay out of rotation until it stopped: a
    # passing health probe must not bring it back (it would take new requests
    # until the drain timeout, then be signalled with some in flight).
    db = sqlite3.connect(app.root / ".lsq" / "state.db")
    try:
        rows = db.execute(
            "SELECT instance, message FROM events WHERE kind = 'state' ORDER BY id"
        ).fetchall()
    finally:
        db.close()
    stopping: set[str] = set()
    for instance, message in rows:
        if message.startswith("stopping"):
            stopping.add(instance)
        elif message.startswith(("stopped", "exited", "failed")):
            stopping.discard(instance)
        else:
            assert instance not in stopping, f"{instance}: {message} while stopping"


def test_interrupted_release_is_recorded_and_restart_runs_one_version(app: App) -> None:
    app.write(VERSION="one", strategy="canary")
    app.lsq("up", "-d", "--timeout", "30")
    app.write(VERSION="two", strategy="canary", step_time="60s")
    app.lsq("deploy", "web", "--no-follow")
    app.wait_for(lambda: app.history()[0]["phase"].startswith("step"), 15, "the first step")
    app.lsq("down")
    interrupted = app.history()[0]
    assert interrupted["state"] == "interrupted" and "step 25%" in interrupted["reason"]

    app.lsq("up", "-d", "--timeout", "30")
    instances = app.instances()
    assert {i["version"] for i in instances} == {"v2"}  # the manifest's entry
    assert {i["weight"] for i in instances} == {100}
    host, port = app.address()
    load = Load(host, port, rate=20, duration=1, slow_every=0).start()
    time.sleep(1.5)
    load.stop()
    assert set(load.versions()) == {"two"} and not load.failed()
    newest = app.history()[0]
    assert newest["strategy"] == "up" and newest["version"] == "v2"


def test_bad_release_options_name_the_option_and_what_was_found_once(app: App) -> None:
    app.write(VERSION="one")
    app.lsq("up", "-d", "--timeout", "30")
    done = app.lsq("deploy", "web", "--step-time", "xyz", check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--step-time expects a duration such as 30s, 5m or 2h, found 'xyz'" in done.stderr
    assert "--since" not in done.stderr
    done = app.lsq("deploy", "web", "--strategy", "canary", "--steps", "50,20", check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "steps" in line and line.count("found [50, 20]") == 1, line
    # Neither began a release: the history holds only the version `up` started.
    assert [h["strategy"] for h in app.history()] == ["up"]
