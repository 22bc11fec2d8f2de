"""Where orders are kept: SQLite or PostgreSQL, chosen by DATABASE_URL.

`sqlite:////abs/orders.db` uses the standard library; `postgresql://...`
imports psycopg (version 3) only then, so SQLite mode needs no install.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from common.web import sqlite_path

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS orders ("
    " id TEXT PRIMARY KEY, product_id INTEGER NOT NULL, qty INTEGER NOT NULL,"
    " email TEXT NOT NULL, amount_cents INTEGER NOT NULL,"
    " payment_id TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL)"
)
COLUMNS = (
    "id",
    "product_id",
    "qty",
    "email",
    "amount_cents",
    "payment_id",
    "status",
    "created_at",
)


class Store:
    """Orders in one table; a short-lived connection per call."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.postgres = database_url.startswith(("postgresql://", "postgres://"))
        if self.postgres:
            import psycopg  # lazy: only PostgreSQL mode needs it

            self._psycopg = psycopg
        else:
            self._path = sqlite_path(database_url)

    @property
    def kind(self) -> str:
        return "postgres" if self.postgres else "sqlite"

    def create_schema(self) -> None:
        # Replicas starting together may race on CREATE TABLE in PostgreSQL
        # (a unique violation in its catalog); trying again settles it.
        for attempt in range(3):
            try:
                self._run(SCHEMA)
                return
            except Exception:
                if attempt == 2:
                    raise
                time.sleep(0.2)

    def ping(self) -> None:
        self._run("SELECT count(*) FROM orders")

    def insert(self, order: dict[str, Any]) -> None:
        marks = ", ".join("?" for _ in COLUMNS)
        sql = f"INSERT INTO orders ({', '.join(COLUMNS)}) VALUES ({marks})"
        self._run(sql, tuple(order[column] for column in COLUMNS))

    def get(self, order_id: str) -> dict[str, Any] | None:
        rows = self._run("SELECT * FROM orders WHERE id = ?", (order_id,))
        return rows[0] if rows else None

    def all(self) -> list[dict[str, Any]]:
        return self._run("SELECT * FROM orders ORDER BY created_at, id")

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        if self.postgres:
            sql = sql.replace("?", "%s")
        with self._connect() as db:
            cursor = db.execute(sql, params)
            if cursor.description is None:
                return []
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=False)) for row in cursor.fetchall()]

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        db: Any
        if self.postgres:
            db = self._psycopg.connect(self.url, autocommit=True, connect_timeout=3)
        else:
            db = sqlite3.connect(self._path, timeout=5.0, isolation_level=None)
        try:
            yield db
        finally:
            db.close()
