"""Start-up order: dependents wait for health, through restarts, until the
deadline (B13, B14)."""

from __future__ import annotations

from rthelpers import PY, App, instance_states

DB = """
import os, socket, sys, time
marker = "db-ran-once"
if {fail_first} and not os.path.exists(marker):
    open(marker, "w").close()
    print("db: first start fails", flush=True)
    sys.exit(1)
time.sleep({delay})
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", int(os.environ["PORT"])))
# Said before the port takes connections: LSQ reads this line and probes on
# its own channel, and with probes every 20 ms a probe could otherwise win
# the race against a line printed just after listen().
print("db listening", flush=True)
time.sleep(0.1)
sock.listen()
while True:
    conn, _ = sock.accept()
    conn.close()
"""

API = """
import os, socket, sys, time
from urllib.parse import urlsplit
url = urlsplit(os.environ["LSQ_DB_URL"])
try:
    socket.create_connection((url.hostname, url.port), timeout=2).close()
except OSError as exc:
    print(f"api: cannot reach db: {exc}", flush=True)
    sys.exit(1)
print("api connected to db", flush=True)
time.sleep(300)
"""


def _write(app: App, *, delay: float, fail_first: bool, db_extra: str = "") -> None:
    app.write("db.py", DB.format(delay=delay, fail_first=fail_first))
    app.write("api.py", API)
    app.manifest(f"""
        services:
          db:
            command: [{PY}, db.py]
            health: {{tcp: true, interval: 0.2s}}
            restart: {{backoff: 0.3s}}
            {db_extra}
          api:
            command: [{PY}, api.py]
            depends_on: [db]
    """)


def test_a_dependent_starts_only_after_its_dependency_is_healthy(app: App) -> None:
    # B13 (db listens after 3 s instead of 5 s)
    _write(app, delay=3, fail_first=False)
    up = app.up()
    up.wait_ready(timeout=30)
    out = up.output()

    assert "api-0: waiting: waits for db to be healthy" in out
    assert (
        out.index("db listening")
        < out.index("db-0: running")
        < out.index("api-0: starting")
    )
    assert "cannot reach db" not in out
    assert "api-0: backoff" not in out and "api-0: failed" not in out
    assert "api connected to db" in app.logs("api", until="api connected")
    assert instance_states(app.service("api")) == ["running"]
    assert app.service("api")["instances"][0]["restarts"] == 0  # type: ignore[index]


def test_a_dependent_keeps_waiting_while_its_dependency_restarts(app: App) -> None:
    # B14
    _write(app, delay=0.2, fail_first=True, db_extra="startup_timeout: 60s")
    up = app.up()
    up.wait_ready(timeout=30)
    out = up.output()

    assert out.index("db: first start fails") < out.index("db-0: backoff")
    assert (
        out.index("db-0: backoff")
        < out.index("db-0: running")
        < out.index("api-0: starting")
    )
    assert "dependency failed" not in out
    assert "api connected to db" in out
    assert app.service("db")["instances"][0]["restarts"] == 1  # type: ignore[index]
    assert instance_states(app.service("api")) == ["running"]


def test_a_dependent_is_failed_with_the_reason_once_the_deadline_passes(
    app: App,
) -> None:
    # B14, second half: db never becomes healthy within its startup_timeout.
    app.write("api.py", API)
    app.manifest(f"""
        services:
          db:
            command: exit 1
            restart: {{backoff: 0.3s}}
            health: {{tcp: true}}
            startup_timeout: 3s
          api:
            command: [{PY}, api.py]
            depends_on: [db]
    """)
    up = app.up()
    out = up.wait_output("api-0: failed", timeout=20)

    assert "dependency failed: db was not healthy within startup_timeout 3s" in out
    assert "api-0: starting" not in out
    api = app.service("api")
    assert api["state"] == "failed"
    assert "dependency failed" in api["instances"][0]["reason"]  # type: ignore[index]
