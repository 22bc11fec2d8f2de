"""The data store: SQLite or PostgreSQL, chosen by DATABASE_URL.

`sqlite:////abs/path.db` opens a file, `postgresql://...` a server; without a URL
the items live in an in-memory SQLite database. One connection, used under a lock.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any

from app.migrations import MIGRATIONS

log = logging.getLogger("app.db")


class Database:
    def __init__(self, url: str | None) -> None:
        self.url = url
        self.dialect = "postgres" if url and url.startswith("postgres") else "sqlite"
        self._lock = threading.Lock()
        self._conn: Any = None

    def connect(self) -> None:
        if self.dialect == "postgres":
            import psycopg
            from psycopg.rows import dict_row

            self._conn = psycopg.connect(
                self.url, autocommit=True, row_factory=dict_row
            )
            return
        path = self.url[len("sqlite:///") :] if self.url else ":memory:"
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 5000")
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._conn.execute(self._sql(sql), params)
            return [dict(row) for row in cursor.fetchall()]

    def ping(self) -> bool:
        try:
            self.query("SELECT 1 AS ok")
            return True
        except Exception:
            log.warning("data store not reachable", exc_info=True)
            return False

    def migrate(self) -> list[int]:
        """Apply the migrations not yet applied; return their versions."""
        with self._lock:
            return self._migrate_locked()

    def _migrate_locked(self) -> list[int]:
        conn = self._conn
        if self.dialect == "postgres":
            # Replicas may start together: one of them migrates at a time.
            conn.execute("SELECT pg_advisory_lock(7261)")
        else:
            conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, name TEXT NOT NULL)"
            )
            done = {
                row[0] if self.dialect == "sqlite" else row["version"]
                for row in conn.execute("SELECT version FROM schema_migrations")
            }
            applied = [v for v, n, s in MIGRATIONS if v not in done]
            for version, name, sql in MIGRATIONS:
                if version in done:
                    continue
                conn.execute(sql[self.dialect])
                conn.execute(
                    self._sql("INSERT INTO schema_migrations VALUES (?, ?)"),
                    (version, name),
                )
                log.info("migration applied", extra={"fields": {"version": version}})
        finally:
            if self.dialect == "postgres":
                conn.execute("SELECT pg_advisory_unlock(7261)")
            else:
                conn.execute("COMMIT")
        return applied

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgres" else sql
