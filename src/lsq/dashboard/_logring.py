"""The last N log lines of every service, in memory, for the dashboard.

The hub hands over every line; the ring keeps a sequence number per line so
a live stream can ask "what came after #n" and a search can page backwards.
A line that is a JSON object is parsed once, here, so the page can show its
fields and the trace view can find lines by `trace_id`.
"""

from __future__ import annotations

import json
import os
import re
from collections import deque
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

_LEVEL_WORD = re.compile(
    r"\b(TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL|CRITICAL)\b", re.IGNORECASE
)
_LEVELS = {
    "trace": "debug",
    "debug": "debug",
    "info": "info",
    "notice": "info",
    "warn": "warn",
    "warning": "warn",
    "error": "error",
    "err": "error",
    "fatal": "error",
    "critical": "error",
    "panic": "error",
}
_LEVEL_KEYS = ("level", "severity", "levelname", "lvl")
_TRACE_KEYS = ("trace_id", "traceId", "trace.id")


@dataclass(frozen=True, slots=True)
class LogLine:
    seq: int
    ts: float
    service: str
    instance: str
    stream: str
    text: str
    level: str
    fields: dict[str, Any] | None
    trace_id: str

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "seq": self.seq,
            "ts": self.ts,
            "service": self.service,
            "instance": self.instance,
            "stream": self.stream,
            "line": self.text,
            "level": self.level,
        }
        if self.fields is not None:
            data["fields"] = self.fields
        return data


def classify(text: str, stream: str) -> tuple[str, dict[str, Any] | None, str]:
    """(level, JSON fields or None, trace id) of one line."""
    fields: dict[str, Any] | None = None
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            fields = parsed
    if fields is not None:
        raw = next((fields[k] for k in _LEVEL_KEYS if k in fields), "")
        level = _LEVELS.get(str(raw).lower(), "")
        trace = next((str(fields[k]) for k in _TRACE_KEYS if k in fields), "")
        return (
            level or ("error" if stream == "stderr" else "info"),
            fields,
            trace.lower(),
        )
    found = _LEVEL_WORD.search(text[:120])
    if found:
        return _LEVELS[found.group(1).lower()], None, ""
    return "info", None, ""


class LogRing:
    """A bounded ring of `LogLine`s, fed by `add` (the hub's listener)."""

    def __init__(self, size: int = 50_000) -> None:
        self._lines: deque[LogLine] = deque(maxlen=size)
        self.last_seq = 0

    def add(self, record: dict[str, object]) -> None:
        text = str(record.get("line", ""))
        stream = str(record.get("stream", "stdout"))
        level, fields, trace = classify(text, stream)
        self.last_seq += 1
        self._lines.append(
            LogLine(
                self.last_seq,
                float(record.get("ts", 0.0)),  # type: ignore[arg-type]
                str(record.get("service", "")),
                str(record.get("instance", "")),
                stream,
                text,
                level,
                fields,
                trace,
            )
        )

    def __len__(self) -> int:
        return len(self._lines)

    def after(self, seq: int, limit: int) -> list[LogLine]:
        """Lines newer than `seq`, oldest first; at most the newest `limit`."""
        count = min(self.last_seq - seq, limit, len(self._lines))
        if count <= 0:
            return []
        newest = list(islice(reversed(self._lines), count))
        newest.reverse()
        return newest

    def search(
        self,
        *,
        query: str = "",
        services: set[str] | None = None,
        level: str = "",
        before: int = 0,
        limit: int = 500,
    ) -> list[LogLine]:
        """The newest `limit` matching lines older than `before` (0: any), oldest first."""
        needle = query.casefold()
        wanted = _level_rank(level)
        found: list[LogLine] = []
        for line in reversed(self._lines):
            if before and line.seq >= before:
                continue
            if services and line.service not in services:
                continue
            if wanted and _level_rank(line.level) < wanted:
                continue
            if needle and needle not in line.text.casefold():
                continue
            found.append(line)
            if len(found) >= limit:
                break
        found.reverse()
        return found

    def by_trace(self, trace_id: str, limit: int = 500) -> list[LogLine]:
        trace_id = trace_id.lower()
        hits = [line for line in self._lines if line.trace_id == trace_id]
        return hits[-limit:]


def _level_rank(level: str) -> int:
    """0 for no filter; a line passes a filter of its own rank or lower."""
    return {"": 0, "debug": 1, "info": 2, "warn": 3, "error": 4}.get(level, 0)


def stored_tail(
    folder: Path, *, per_service: int = 32 << 10, total: int = 2000
) -> list[dict[str, object]]:
    """The newest stored lines of every service (`.lsq/logs/<service>.log`),
    oldest first: at most `per_service` bytes of each file and `total` lines.

    Lets the page show what happened just before a restart of the runtime.
    """
    records: list[dict[str, object]] = []
    for path in sorted(folder.glob("*.log")):
        try:
            with open(path, "rb") as file:
                size = file.seek(0, os.SEEK_END)
                file.seek(max(0, size - per_service))
                data = file.read()
        except OSError:
            continue
        raw_lines = data.splitlines()
        if size > per_service:
            raw_lines = raw_lines[1:]  # the first one is cut
        for raw in raw_lines:
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict):
                record["service"] = path.name[:-4]
                records.append(record)
    records.sort(key=lambda r: float(r.get("ts", 0)))  # type: ignore[arg-type]
    return records[-total:]
