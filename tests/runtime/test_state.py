"""The runtime's state store (`lsq.runtime._state`): writes made inside an
event loop are queued and committed together at the end of the iteration;
reads and `close` see them at once."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from lsq.runtime._state import StateStore


def _rows(path: Path, table: str) -> list[tuple[object, ...]]:
    # Another connection, as `lsq ps` after a crash would read the file.
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT * FROM {table}").fetchall()


def test_writes_in_a_loop_are_committed_at_the_end_of_the_iteration(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore(path)

    async def main() -> None:
        for n in range(3):
            store.event("state", f"message {n}", service="web", instance="web-0")
        store.save_instance({"id": "web-0", "service": "web", "state": "starting"})
        store.save_instance({"id": "web-0", "service": "web", "state": "running"})
        assert _rows(path, "events") == []  # not yet: queued
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert [r[5] for r in _rows(path, "events")] == ["message 0", "message 1", "message 2"]
        (snapshot,) = _rows(path, "instances")
        assert json.loads(str(snapshot[2]))["state"] == "running"  # the last one wins

    asyncio.run(main())
    store.close()


def test_a_read_or_close_sees_what_is_queued(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore(path)

    async def main() -> None:
        store.event("runtime", "one")
        assert [e["message"] for e in store.events()] == ["one"]
        store.event("runtime", "two")
        store.close()
        assert [r[5] for r in _rows(path, "events")] == ["one", "two"]
        store.event("runtime", "after close")  # shut-down noise: dropped, no error
        await asyncio.sleep(0)

    asyncio.run(main())


def test_a_write_outside_a_loop_is_written_at_once(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore(path)
    store.event("runtime", "now")
    assert [r[5] for r in _rows(path, "events")] == ["now"]
    store.close()


def test_writes_wait_while_another_program_holds_the_database(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore(path)
    store._db.execute("PRAGMA busy_timeout=50")  # not the default 5 s
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock

    async def main() -> None:
        store.event("state", "backoff: killed by SIGKILL", service="web", instance="web-0")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        other.execute("COMMIT")
        store.event("state", "starting", service="web", instance="web-0")
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(main())
    assert [r[5] for r in _rows(path, "events")] == ["backoff: killed by SIGKILL", "starting"]
    store.close()
    other.close()
