"""LogRing: bounded, ordered, searchable, and reads JSON lines as fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lsq.dashboard import LogRing
from lsq.dashboard._logring import classify, stored_tail


def feed(ring: LogRing, n: int, service: str = "api", text: str = "line {i}") -> None:
    for i in range(n):
        ring.add(
            {
                "service": service,
                "instance": f"{service}-0",
                "ts": float(i),
                "stream": "stdout",
                "line": text.format(i=i),
            }
        )


def test_ring_keeps_only_the_newest_lines() -> None:
    ring = LogRing(size=100)
    feed(ring, 250)
    assert len(ring) == 100
    lines = ring.search(limit=1000)
    assert [ln.seq for ln in lines] == list(range(151, 251))


def test_after_returns_only_newer_lines_in_order_and_bounded() -> None:
    ring = LogRing(size=100)
    feed(ring, 30)
    assert [ln.seq for ln in ring.after(25, 100)] == [26, 27, 28, 29, 30]
    assert ring.after(30, 100) == []
    assert [ln.seq for ln in ring.after(0, 3)] == [28, 29, 30]
    feed(ring, 200)
    # Asked for lines the ring no longer holds: it gives what it has.
    assert len(ring.after(5, 1000)) == 100


def test_search_by_text_service_level_and_before() -> None:
    ring = LogRing()
    feed(ring, 10, "api", "GET /items {i}")
    feed(ring, 10, "db", "ERROR query {i} failed")
    assert {ln.service for ln in ring.search(query="query")} == {"db"}
    assert len(ring.search(query="get /ITEMS")) == 10
    assert {ln.service for ln in ring.search(level="error")} == {"db"}
    assert len(ring.search(services={"api"}, limit=3)) == 3
    older = ring.search(before=5)
    assert [ln.seq for ln in older] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("text", "stream", "level"),
    [
        ('{"level": "warning", "msg": "slow"}', "stdout", "warn"),
        ('{"severity": "ERROR", "msg": "x"}', "stdout", "error"),
        ('{"msg": "no level"}', "stderr", "error"),
        ("2026-01-01 INFO started", "stdout", "info"),
        ("Traceback ... ValueError", "stderr", "info"),
        ("[DEBUG] cache miss", "stdout", "debug"),
        ("{not json", "stdout", "info"),
    ],
)
def test_levels(text: str, stream: str, level: str) -> None:
    assert classify(text, stream)[0] == level


def test_json_lines_become_fields_and_are_found_by_trace_id() -> None:
    ring = LogRing()
    trace = "AB" * 16
    ring.add(
        {
            "service": "api",
            "instance": "api-0",
            "ts": 1.0,
            "stream": "stdout",
            "line": json.dumps({"msg": "hi", "trace_id": trace, "user": 7}),
        }
    )
    feed(ring, 5)
    (line,) = ring.by_trace(trace.lower())
    assert line.fields == {"msg": "hi", "trace_id": trace, "user": 7}
    assert line.to_json()["fields"]["user"] == 7


def test_stored_tail_reads_the_newest_lines_of_each_file(tmp_path: Path) -> None:
    for name, offset in (("api", 0.0), ("db", 0.5)):
        with open(tmp_path / f"{name}.log", "w") as file:
            for i in range(1000):
                record = {
                    "ts": i + offset,
                    "instance": f"{name}-0",
                    "stream": "stdout",
                    "line": f"{name} {i}",
                }
                file.write(json.dumps(record) + "\n")
    (tmp_path / "broken.log").write_text("not json\n")
    records = stored_tail(tmp_path, per_service=4096, total=50)
    assert len(records) == 50
    assert records[-1] == {
        "ts": 999.5,
        "instance": "db-0",
        "stream": "stdout",
        "line": "db 999",
        "service": "db",
    }
    assert [r["ts"] for r in records] == sorted(r["ts"] for r in records)  # type: ignore[type-var]
    assert stored_tail(tmp_path / "missing") == []
