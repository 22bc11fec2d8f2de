"""Service output: one printer for the terminal, and rotating files per service.

Every line is stored as one JSON object per line in
`.lsq/logs/<service>.log`: `{"ts", "instance", "stream", "line"}` plus
`"partial": true` for a flushed partial line. A file that passes `max_bytes`
is rotated to `.1`, `.2`, ... keeping `backups` old files.

Terminal output is flushed line by line whether or not it is a terminal, so
`lsq up > out.log` can be followed live.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TextIO

_COLOURS = (36, 33, 32, 35, 34, 91, 92, 93, 94, 95, 96)
_SGR = re.compile(r"\x1b\[[0-9;]*m")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: str, *, colour: bool) -> str:
    """A service's line made safe for a terminal: colour codes are kept on a
    terminal (dropped elsewhere); every other control character, such as a
    title-setting or cursor sequence, is shown escaped as `\\xNN`."""
    parts = _SGR.split(text)
    codes = _SGR.findall(text) if colour else [""] * (len(parts) - 1)
    safe = [_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", p) for p in parts]
    out = safe[0]
    for code, part in zip(codes, safe[1:]):
        out += code + part
    return out

LogListener = Callable[[dict[str, object]], None]


class RotatingFile:
    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        self.path = path
        self._max = max_bytes
        self._backups = backups
        self._file: IO[bytes] = open(path, "ab")
        self._size = self._file.tell()

    def write(self, data: bytes) -> None:
        if self._size + len(data) > self._max and self._size:
            self._rotate()
        self._file.write(data)
        self._size += len(data)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def _rotate(self) -> None:
        self._file.close()
        for n in range(self._backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self._file = open(self.path, "ab")
        self._size = 0


class Printer:
    """Prefixes time and a padded, coloured name; colour only on a terminal."""

    def __init__(self, out: TextIO | None, *, width: int = 12, notes_only: bool = False) -> None:
        self._out = out
        self._notes_only = notes_only
        self._width = width
        self._colour = bool(out is not None and out.isatty())
        self._colours: dict[str, int] = {}

    def widen(self, names: list[str]) -> None:
        self._width = max([self._width, *(len(n) + 2 for n in names)])

    def line(self, name: str, text: str) -> None:
        if self._out is None or (self._notes_only and name != "lsq"):
            return
        stamp = time.strftime("%H:%M:%S")
        label = name.ljust(self._width)
        if self._colour:
            colour = self._colours.setdefault(name, _COLOURS[len(self._colours) % len(_COLOURS)])
            label = f"\x1b[{colour}m{label}\x1b[0m"
        try:
            self._out.write(f"{stamp} {label}| {printable(text, colour=self._colour)}\n")
            self._out.flush()
        except (OSError, ValueError):
            # A closed pipe, or a terminal that hung up (EIO): stop printing
            # but keep running, so the shutdown that follows is not cut short.
            self._out = None

    def note(self, text: str) -> None:
        self.line("lsq", text)


class LogHub:
    """Receives every line of every instance; stores, prints and forwards it."""

    def __init__(self, folder: Path, printer: Printer, *, max_bytes: int = 10 << 20, backups: int = 3) -> None:
        self._folder = folder
        self._printer = printer
        self._max = max_bytes
        self._backups = backups
        self._files: dict[str, RotatingFile] = {}
        self._listeners: list[LogListener] = []
        folder.mkdir(parents=True, exist_ok=True)

    def listen(self, listener: LogListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def line(self, service: str, instance: str, stream: str, text: str, partial: bool) -> None:
        record: dict[str, object] = {"ts": round(time.time(), 3), "instance": instance, "stream": stream, "line": text}
        if partial:
            record["partial"] = True
        file = self._files.get(service)
        if file is None:
            file = self._files[service] = RotatingFile(
                self._folder / f"{service}.log", max_bytes=self._max, backups=self._backups
            )
        file.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8", "replace"))
        self._printer.line(instance, text + (" \u2026" if partial else ""))
        for listener in list(self._listeners):
            listener({"service": service, **record})

    def flush(self) -> None:
        for file in self._files.values():
            file.flush()

    def close(self) -> None:
        for file in self._files.values():
            file.close()
        self._files.clear()


def read_logs(folder: Path, services: list[str] | None) -> list[dict[str, object]]:
    """All stored lines of these services (all when None), oldest first."""
    records: list[dict[str, object]] = []
    names = services or sorted(p.name[:-4] for p in folder.glob("*.log"))
    for name in names:
        base = folder / f"{name}.log"
        files = sorted(folder.glob(f"{name}.log.*"), key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0)
        for path in [*files, base]:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            for raw in data.splitlines():
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue
                record["service"] = name
                records.append(record)
    records.sort(key=lambda r: float(r.get("ts", 0)))  # type: ignore[arg-type]
    return records


def stdout_printer() -> Printer:
    return Printer(sys.stdout)
