"""A generated service under the real runtime: `lsq new`, `lsq up -d`, call it
through its stable address, read its metrics and traced logs, `lsq down`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from tplhelpers import Lsq, have

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def _address(lsq: Lsq, app: Path, name: str) -> str:
    status = json.loads(lsq("ps", "--json", cwd=app).out)
    return next(s["address"] for s in status["services"] if s["name"] == name)


def _traced_log_line(lsq: Lsq, app: Path, name: str) -> dict[str, object] | None:
    for line in lsq("logs", name, cwd=app).out.splitlines():
        text = line.split("| ", 1)[-1]
        if text.startswith("{"):
            event = json.loads(text)
            if event.get("trace_id") == TRACE_ID:
                return event  # type: ignore[no-any-return]
    return None


def _drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize(
    "data", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
@pytest.mark.parametrize("template", ["python", "node"])
def test_new_service_is_healthy_under_lsq_up_at_once(
    app: Path, lsq: Lsq, template: str, data: str
) -> None:
    if template == "node" and not have("npm"):
        pytest.skip("npm is not installed")
    from lsq.runtime._data import database_name

    name = f"items-{template}"
    made = lsq("new", name, "--template", template, "--data", data, cwd=app)
    assert made.code == 0, made.err
    env = {"LSQ_POSTGRES_URL": POSTGRES} if data == "postgres" else {}
    database = database_name(app.name, name)
    try:
        up = lsq("up", "-d", "--timeout", "90", cwd=app, env=env)
        assert up.code == 0, up.out + up.err
        base = _address(lsq, app, name)

        created = httpx.post(
            base + "/items", json={"name": "first"}, headers={"traceparent": TRACEPARENT}
        )
        assert created.status_code == 201, created.text
        assert httpx.get(base + "/items").json()[0]["name"] == "first"
        metrics = httpx.get(base + "/metrics").text
        assert 'http_requests_total{method="POST",route="/items",status="201"} 1' in metrics

        deadline = time.monotonic() + 10
        event = None
        while event is None and time.monotonic() < deadline:
            event = _traced_log_line(lsq, app, name)
            time.sleep(0.3)
        assert event is not None, lsq("logs", name, cwd=app).out

        if data == "postgres":
            import psycopg

            url = POSTGRES.rsplit("/", 1)[0] + "/" + database
            with psycopg.connect(url, connect_timeout=5) as conn:
                versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
            assert versions == [1]
        else:
            assert (app / ".lsq" / "data" / name / f"{name}.db").is_file()
    finally:
        lsq("down", cwd=app)
        if data == "postgres":
            _drop_database(database)
