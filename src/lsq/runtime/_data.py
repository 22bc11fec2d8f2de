"""Each service owns its data: a SQLite file, or a PostgreSQL database of its own.

`data: sqlite` → `.lsq/data/<service>/<service>.db`.
`data: postgres` → database `lsq_<app>_<service>` created once on the server
named by `LSQ_POSTGRES_URL` (default `postgresql://127.0.0.1:5432/postgres`).
Either way the service receives the location as `DATABASE_URL`.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from lsq.errors import ServiceError

DEFAULT_POSTGRES = "postgresql://127.0.0.1:5432/postgres"


def kind(declared: str | None) -> str | None:
    """`sql` resolves to postgres when LSQ_POSTGRES_URL is set, else sqlite."""
    if declared == "sql":
        return "postgres" if os.environ.get("LSQ_POSTGRES_URL") else "sqlite"
    return declared


def postgres_server() -> str:
    return os.environ.get("LSQ_POSTGRES_URL") or DEFAULT_POSTGRES


def database_name(app: str, service: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", f"lsq_{app}_{service}".lower())[:63]


def _with_db(url: str, db: str) -> str:
    parts = urlsplit(url)
    if not parts.username and "@" not in parts.netloc:
        user = os.environ.get("PGUSER") or _os_user()
        parts = parts._replace(netloc=f"{user}@{parts.netloc}")
    return urlunsplit(parts._replace(path="/" + db))


def _os_user() -> str:
    import getpass

    return getpass.getuser()


def sqlite_url(data_dir: Path, service: str) -> str:
    folder = data_dir / service
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / (service + '.db')}"


def provision_postgres(app: str, service: str) -> str:
    """Create the service's database if it does not exist; return its URL."""
    server = postgres_server()
    db = database_name(app, service)
    try:
        import psycopg
    except ImportError as exc:
        raise ServiceError(
            f"service {service!r}: data: postgres needs psycopg; "
            "install it with `pip install 'psycopg[binary]'`"
        ) from exc
    try:
        with psycopg.connect(_with_db(server, urlsplit(server).path.lstrip("/") or "postgres"),
                             autocommit=True, connect_timeout=5) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone()
            if not found:
                conn.execute(f'CREATE DATABASE "{db}"')
    except psycopg.Error as exc:
        raise ServiceError(
            f"service {service!r}: cannot create its PostgreSQL database on "
            f"{_redact(server)}: {str(exc).strip().splitlines()[0]}; "
            "check LSQ_POSTGRES_URL and that the server is running"
        ) from exc
    return _with_db(server, db)


def drop_postgres(app: str, service: str) -> None:
    import psycopg

    server = postgres_server()
    db = database_name(app, service)
    with psycopg.connect(_with_db(server, urlsplit(server).path.lstrip("/") or "postgres"),
                         autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def drop_sqlite(data_dir: Path, service: str) -> None:
    shutil.rmtree(data_dir / service, ignore_errors=True)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
