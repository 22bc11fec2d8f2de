"""The runtime's state on disk: SQLite under `.lsq/state.db` (WAL).

Holds the event stream (every state change, with time, service, instance and
message) and the last snapshot of each instance, so that `lsq ps` after a
crash and the dashboard across restarts can read what happened.

Writes made while an event loop runs are queued and written together, in one
transaction, at the end of the loop's current iteration: a start-up of 50
services makes some 350 of them, and a commit each cost more than the rest of
their bookkeeping. Nothing waits in the queue for longer than that iteration,
and every read flushes it first. A write outside a running loop is written
at once.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from typing import Any
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
        # NORMAL before WAL: the switch to WAL and the schema's commit then
        # skip the syncs that the default (FULL) makes on a new file.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA journal_mode=WAL")
        # The runtime reads back little (recent events, a snapshot per
        # instance): a small page cache keeps a long-lived runtime small.
        self._db.execute("PRAGMA cache_size=-512")
        self._db.executescript(_SCHEMA)
        self._writes = 0
        self._events: list[tuple[float, str, str, str, str]] = []
        self._snapshots: dict[Any, dict[str, object]] = {}  # by instance id: the last one wins
        self._flush_due = False
        self._closed = False
        self._failing = False  # the last flush failed (said once)

    def event(self, kind: str, message: str, *, service: str = "", instance: str = "") -> dict[str, object]:
        ts = time.time()
        self._events.append((ts, kind, service, instance, message))
        self._queued()
        return {"ts": ts, "kind": kind, "service": service, "instance": instance, "message": message}

    def save_instance(self, snapshot: dict[str, object]) -> None:
        self._snapshots[snapshot["id"]] = snapshot
        self._queued()

    def _queued(self) -> None:
        if self._flush_due or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop here: nobody would flush later
            self.flush()
            return
        self._flush_due = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what is queued, in one transaction."""
        self._flush_due = False
        events, self._events = self._events, []
        snapshots, self._snapshots = self._snapshots, {}
        if self._closed or not (events or snapshots):
            return  # (what comes after `close`, during shut-down, is not kept)
        db = self._db
        try:
            db.execute("BEGIN")
            if events:
                db.executemany(
                    "INSERT INTO events (ts, kind, service, instance, message) VALUES (?,?,?,?,?)",
                    events,
                )
            if snapshots:
                db.executemany(
                    "INSERT OR REPLACE INTO instances (id, service, snapshot) VALUES (?,?,?)",
                    [(s["id"], s["service"], json.dumps(s)) for s in snapshots.values()],
                )
            if (self._writes + len(events)) // 1000 != self._writes // 1000:
                db.execute(
                    "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?", (MAX_EVENTS,)
                )
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            # Locked by another program past the busy timeout, or a full
            # disk: keep the writes for the next flush (newer snapshots win),
            # within MAX_EVENTS.
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._events = (events + self._events)[-MAX_EVENTS:]
            self._snapshots = {**snapshots, **self._snapshots}
            if not self._failing:
                self._failing = True
                print(f"lsq: state.db: writes wait for the next try: {exc}", flush=True)
            return
        self._writes += len(events)
        self._failing = False

    def events(self, *, since_id: int = 0, limit: int = 500) -> list[dict[str, object]]:
        self.flush()
        rows = self._db.execute(
            "SELECT id, ts, kind, service, instance, message FROM events "
            "WHERE id > ? ORDER BY id DESC LIMIT ?",
            (since_id, limit),
        ).fetchall()
        keys = ("id", "ts", "kind", "service", "instance", "message")
        return [dict(zip(keys, row)) for row in reversed(rows)]

    def close(self) -> None:
        self.flush()
        self._closed = True
        self._db.close()
