"""Release history: one row per release (and per version `lsq up` started),
in the app's `.lsq/state.db`, so it survives `lsq down` and a crash.

The runtime writes through its own connection; `lsq history` reads the file
directly, so it works whether or not the app runs.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS releases (
    id INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    version TEXT NOT NULL,
    state TEXT NOT NULL,
    started REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS releases_service ON releases (service, id);
"""

ACTIVE_STATES = ("running", "warm")
"""A release in these states is still in progress (or was, if the runtime died)."""


class ReleaseStore:
    """The `releases` table. Each row keeps the whole release record as JSON."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=5000")
        # As the runtime's own connection (lsq.runtime._state): the file is in
        # WAL mode, where NORMAL syncs at checkpoints, not at every commit.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Make the writes inside one transaction (one commit, not one each)."""
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def add(self, record: dict[str, Any]) -> int:
        cur = self._db.execute(
            "INSERT INTO releases (service, version, state, started, record) VALUES (?,?,?,?,?)",
            (record["service"], record["version"], record["state"], record["started"], "{}"),
        )
        rid = int(cur.lastrowid or 0)
        record["id"] = rid
        self.save(record)
        return rid

    def save(self, record: dict[str, Any]) -> None:
        self._db.execute(
            "UPDATE releases SET state = ?, record = ? WHERE id = ?",
            (record["state"], json.dumps(record), record["id"]),
        )

    def history(self, service: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """The service's releases, newest first."""
        rows = self._db.execute(
            "SELECT record FROM releases WHERE service = ? ORDER BY id DESC LIMIT ?",
            (service, limit),
        ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def services(self) -> set[str]:
        """The services that have any release at all."""
        return {row[0] for row in self._db.execute("SELECT DISTINCT service FROM releases")}

    def active(self) -> list[dict[str, Any]]:
        marks = ",".join("?" * len(ACTIVE_STATES))
        rows = self._db.execute(
            f"SELECT record FROM releases WHERE state IN ({marks}) ORDER BY id", ACTIVE_STATES
        ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def next_version(self, service: str) -> str:
        """`v1`, `v2`, ...: one more than the highest label the service had."""
        rows = self._db.execute(
            "SELECT version FROM releases WHERE service = ?", (service,)
        ).fetchall()
        numbers = [int(m.group(1)) for (v,) in rows if (m := re.fullmatch(r"v(\d+)", v))]
        return f"v{max(numbers, default=0) + 1}"

    def close(self) -> None:
        self._db.close()
