"""The runtime commands against a running app: scale, stop/start/restart, and
the control API's refusals."""

from __future__ import annotations

import http.client
import json

import psutil
from rthelpers import PY, App, assert_all_gone, instance_states, wait_for

SLEEPER = f"[{PY}, -c, 'import time; print(\"up\", flush=True); time.sleep(300)']"


def _start(app: App) -> None:
    app.manifest(f"""
        services:
          web:
            command: {SLEEPER}
            stop_timeout: 3s
          worker:
            command: {SLEEPER}
    """)
    result = app.lsq("up", "-d", "--timeout", "20")
    app.track_runtime()
    assert result.returncode == 0, result.stdout + result.stderr


def _pids(app: App, name: str) -> list[int]:
    return [i["pid"] for i in app.service(name)["instances"]]  # type: ignore[attr-defined]


def test_scale_up_and_down(app: App) -> None:
    _start(app)
    assert app.lsq("scale", "web=3").returncode == 0
    wait_for(
        lambda: instance_states(app.service("web")) == ["running"] * 3,
        10,
        "3 running replicas",
    )
    pids = _pids(app, "web")
    procs = [psutil.Process(p) for p in pids]
    assert len(set(pids)) == 3
    ports = [i["port"] for i in app.service("web")["instances"]]  # type: ignore[attr-defined]
    assert len(set(ports)) == 3

    result = app.lsq("scale", "web=1", "worker=0")
    assert result.returncode == 0, result.stderr

    assert instance_states(app.service("web")) == ["running"]
    assert _pids(app, "web") == pids[:1]
    assert_all_gone(procs[1:])
    assert app.service("worker")["instances"] == []
    for item in ("web=lots", "=2", "web=", "web=1.5"):
        bad = app.lsq("scale", item)
        assert bad.returncode == 2 and f"expected SERVICE=N such as web=3, found '{item}'" in bad.stderr
    # A number out of range says the range, and asks nothing of the runtime.
    for item, found in (("web=-1", "-1"), ("web=257", "257"), ("web=" + "9" * 5000, "9" * 12 + "...")):
        bad = app.lsq("scale", "web=2", item)
        assert bad.returncode == 2
        assert bad.stderr.strip() == (f"lsq: error: replicas of web must be between 0 and 256, found {found}; "
                                      "web=0 stops every replica"), bad.stderr
    assert instance_states(app.service("web")) == ["running"]
    # Every name is checked before anything is scaled; a name never reaches
    # another endpoint of the control API.
    for items, error in ((("web=2", "nosuch=5"), "no service 'nosuch' that LSQ runs"),
                         (("worker/stop?=2",), "no service 'worker/stop?' that LSQ runs")):
        bad = app.lsq("scale", *items)
        assert bad.returncode == 2 and error in bad.stderr, bad.stderr
    assert instance_states(app.service("web")) == ["running"]
    assert app.service("worker")["state"] == "running"


def test_stop_start_and_restart_one_service(app: App) -> None:
    _start(app)
    first = psutil.Process(_pids(app, "web")[0])
    worker = _pids(app, "worker")

    assert app.lsq("stop", "web").returncode == 0
    assert app.service("web")["state"] == "stopped"
    assert_all_gone([first])
    assert _pids(app, "worker") == worker

    assert app.lsq("start", "web").returncode == 0
    wait_for(
        lambda: instance_states(app.service("web")) == ["running"],
        10,
        "web running again",
    )
    second = _pids(app, "web")[0]
    assert second != first.pid

    assert app.lsq("restart", "web").returncode == 0
    wait_for(
        lambda: instance_states(app.service("web")) == ["running"], 10, "web restarted"
    )
    third = app.service("web")["instances"][0]  # type: ignore[index]
    assert third["pid"] not in (first.pid, second)
    assert third["restarts"] >= 1
    assert _pids(app, "worker") == worker

    unknown = app.lsq("stop", "nosuch")
    assert unknown.returncode == 2 and "no service 'nosuch'" in unknown.stderr


def _request(
    port: int, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True)
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def test_control_api_refuses_what_it_must(app: App) -> None:
    _start(app)
    info = json.loads((app.state_dir() / "runtime.json").read_text())
    token = (app.state_dir() / "token").read_text().strip()
    assert (app.state_dir() / "token").stat().st_mode & 0o077 == 0
    port = int(info["port"])
    host = f"127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {token}"}

    assert _request(port, "GET", "/v1/status", {"Host": host, **auth})[0] == 200
    cases = [
        ("no token", "GET", "/v1/status", {"Host": host}, 401),
        (
            "wrong token",
            "GET",
            "/v1/status",
            {"Host": host, "Authorization": "Bearer nope"},
            401,
        ),
        (
            "foreign Host",
            "GET",
            "/v1/status",
            {"Host": f"evil.test:{port}", **auth},
            421,
        ),
        (
            "foreign Origin",
            "POST",
            "/v1/services/web/stop",
            {"Host": host, "Origin": "http://evil.test", **auth},
            403,
        ),
        (
            "state change by GET",
            "GET",
            "/v1/services/web/stop",
            {"Host": host, **auth},
            405,
        ),
        ("down by GET", "GET", "/v1/down", {"Host": host, **auth}, 405),
        ("stop without token", "POST", "/v1/services/web/stop", {"Host": host}, 401),
    ]
    for what, method, path, headers, expected in cases:
        status, body = _request(port, method, path, headers)
        assert status == expected, (what, status, body)
        assert body.get("error"), what
    # A count is a whole number, as strictly as in the manifest (1e400 used
    # to drop the connection; 2.7, true and "3" were taken).
    for count in (b"1e400", b"2.7", b"true", b'"3"', b"null"):
        status, body = _request(port, "POST", "/v1/services/web/scale", {"Host": host, **auth},
                                b'{"replicas": ' + count + b"}")
        assert (status, body.get("error")) == (
            400, 'expected a JSON body {"replicas": N}, N a whole number'), count

    # None of the refused requests changed anything.
    assert instance_states(app.service("web")) == ["running"]
    assert app.lsq("ps").returncode == 0
