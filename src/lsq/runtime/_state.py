"""The runtime's state on disk: SQLite under `.lsq/state.db` (WAL).

Holds the event stream (every state change, with time, service, instance and
message) and the last snapshot of each instance, so that `lsq ps` after a
crash and the dashboard across restarts can read what happened.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    service TEXT,
    instance TEXT,
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS instances (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    snapshot TEXT NOT NULL
);
"""

MAX_EVENTS = 20_000


class StateStore:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # The runtime reads back little (recent events, a snapshot per
        # instance): a small page cache keeps a long-lived runtime small.
        self._db.execute("PRAGMA cache_size=-512")
        self._db.executescript(_SCHEMA)
        self._writes = 0

    def event(self, kind: str, message: str, *, service: str = "", instance: str = "") -> dict[str, object]:
        ts = time.time()
        self._db.execute(
            "INSERT INTO events (ts, kind, service, instance, message) VALUES (?,?,?,?,?)",
            (ts, kind, service, instance, message),
        )
        self._writes += 1
        if self._writes % 1000 == 0:
            self._db.execute(
                "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?", (MAX_EVENTS,)
            )
        return {"ts": ts, "kind": kind, "service": service, "instance": instance, "message": message}

    def save_instance(self, snapshot: dict[str, object]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO instances (id, service, snapshot) VALUES (?,?,?)",
            (snapshot["id"], snapshot["service"], json.dumps(snapshot)),
        )

    def events(self, *, since_id: int = 0, limit: int = 500) -> list[dict[str, object]]:
        rows = self._db.execute(
            "SELECT id, ts, kind, service, instance, message FROM events "
            "WHERE id > ? ORDER BY id DESC LIMIT ?",
            (since_id, limit),
        ).fetchall()
        keys = ("id", "ts", "kind", "service", "instance", "message")
        return [dict(zip(keys, row)) for row in reversed(rows)]

    def close(self) -> None:
        self._db.close()
