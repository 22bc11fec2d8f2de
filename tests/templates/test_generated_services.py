"""Generated services run as generated: their own tests pass, and started the way
LSQ starts them (PORT, DATABASE_URL, LSQ_SERVICE) they migrate, answer, count
requests and log JSON lines carrying the caller's trace id."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tplhelpers import Running, have, run_lsq

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
COMMANDS = {"python": [".venv/bin/python", "-m", "app"], "node": ["node", "server.js"]}


@pytest.fixture(scope="module")
def generated(
    tmp_path_factory: pytest.TempPathFactory, cache_dir: Path
) -> dict[str, Path]:
    """One app with a Python and a Node service, dependencies installed (once)."""
    root = tmp_path_factory.mktemp("gen")
    assert run_lsq("init", "app", cwd=root, cache=cache_dir).code == 0
    app = root / "app"
    folders = {}
    for template in ("python", "node"):
        if template == "node" and not have("npm"):
            continue
        name = f"{template}-svc"
        # postgres data also installs the PostgreSQL driver; SQLite needs none.
        result = run_lsq(
            "new",
            name,
            "-t",
            template,
            "--data",
            "postgres",
            cwd=app,
            cache=cache_dir,
            timeout=300,
        )
        assert result.code == 0, result.err
        assert "installed dependencies in" in result.out
        folders[template] = app / name
    return folders


def _folder(generated: dict[str, Path], template: str) -> Path:
    if template not in generated:
        pytest.skip(f"{template}: toolchain not installed")
    return generated[template]


@pytest.mark.parametrize("template", ["python", "node"])
def test_own_tests_pass_after_generation(
    generated: dict[str, Path], template: str
) -> None:
    folder = _folder(generated, template)
    argv = (
        [".venv/bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        if template == "python"
        else ["npm", "test", "--silent"]
    )
    done = subprocess.run(
        argv, cwd=folder, check=False, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _exercise(running: Running) -> None:
    created = httpx.post(
        running.base + "/items",
        json={"name": "first"},
        headers={"traceparent": TRACEPARENT},
        timeout=5,
    )
    assert created.status_code == 201
    item = created.json()
    assert httpx.get(f"{running.base}/items/{item['id']}", timeout=5).json() == item
    assert httpx.get(running.base + "/health/live", timeout=5).status_code == 200
    metrics = httpx.get(running.base + "/metrics", timeout=5).text
    assert 'http_requests_total{method="POST",route="/items",status="201"} 1' in metrics
    assert "http_request_duration_seconds_bucket" in metrics
    assert (
        "/items" in httpx.get(running.base + "/openapi.json", timeout=5).json()["paths"]
    )


def _log_events(output: str) -> list[dict[str, object]]:
    events = []
    for line in output.splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


@pytest.mark.parametrize("template", ["python", "node"])
def test_runs_on_sqlite_with_migrations_metrics_and_traced_logs(
    generated: dict[str, Path],
    template: str,
    tmp_path: Path,
    service_runner: Callable[..., Running],
) -> None:
    folder = _folder(generated, template)
    db = tmp_path / "data.db"
    running = service_runner(
        folder, COMMANDS[template], {"DATABASE_URL": f"sqlite:///{db}"}
    )
    _exercise(running)
    events = _log_events(running.output())

    request = [
        e for e in events if e.get("msg") == "request" and e.get("path") == "/items"
    ]
    assert request and request[0]["trace_id"] == TRACE_ID
    assert request[0]["service"] == folder.name
    with sqlite3.connect(db) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        names = [r[0] for r in conn.execute("SELECT name FROM items")]
    assert versions == [1] and names == ["first"]


@pytest.fixture
def pg_url() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    name = f"lsq_tpl_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
@pytest.mark.parametrize("template", ["python", "node"])
def test_runs_on_postgres_with_migrations(
    generated: dict[str, Path],
    template: str,
    pg_url: str,
    service_runner: Callable[..., Running],
) -> None:
    import psycopg

    folder = _folder(generated, template)
    running = service_runner(folder, COMMANDS[template], {"DATABASE_URL": pg_url})
    _exercise(running)
    running.stop()
    with psycopg.connect(pg_url, connect_timeout=5) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        names = [r[0] for r in conn.execute("SELECT name FROM items")]
    assert versions == [1] and names == ["first"]


@pytest.mark.postgres
@pytest.mark.parametrize("template", ["python", "node"])
def test_ready_fails_when_the_database_goes_away(
    generated: dict[str, Path],
    template: str,
    pg_url: str,
    service_runner: Callable[..., Running],
) -> None:
    import psycopg

    folder = _folder(generated, template)
    running = service_runner(folder, COMMANDS[template], {"DATABASE_URL": pg_url})
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(
        "postgresql://postgres@127.0.0.1:5432/postgres",
        autocommit=True,
        connect_timeout=5,
    ) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    statuses = [
        httpx.get(running.base + "/health/ready", timeout=5).status_code
        for _ in range(3)
    ]
    assert statuses == [503, 503, 503]
    assert httpx.get(running.base + "/health/live", timeout=5).status_code == 200


def test_generated_clients_follow_the_env_name_rule(generated: dict[str, Path]) -> None:
    folder = _folder(generated, "python")
    code = (
        "from app.clients import env_name; "
        "print(env_name('user-api'), env_name('billing.v2'))"
    )
    done = subprocess.run(
        [".venv/bin/python", "-c", code],
        cwd=folder,
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.stdout.split() == ["LSQ_USER_API_URL", "LSQ_BILLING_V2_URL"]


def test_python_requirements_follow_the_data_choice(
    tmp_path: Path, cache_dir: Path
) -> None:
    assert run_lsq("init", "app", cwd=tmp_path, cache=cache_dir).code == 0
    app = tmp_path / "app"
    assert run_lsq("new", "lite", "--no-install", cwd=app, cache=cache_dir).code == 0
    assert (
        run_lsq(
            "new", "pg", "--data", "postgres", "--no-install", cwd=app, cache=cache_dir
        ).code
        == 0
    )
    assert "psycopg" not in (app / "lite" / "requirements.txt").read_text()
    assert "psycopg" in (app / "pg" / "requirements.txt").read_text()
