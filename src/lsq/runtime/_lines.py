"""Turn a child's output pipe into log lines, without ever blocking the child.

The reader is an asyncio protocol on the pipe, so the child's writes are
drained as fast as they arrive and no thread can die on bad input. Rules
(documented in docs/logs.md):

- Bytes are decoded as UTF-8 with invalid sequences replaced by U+FFFD.
- Writes split across calls are joined until a newline; `\\r\\n` ends a line.
- A lone `\\r` (a progress bar redrawing itself) keeps only what follows it,
  as a terminal would show it.
- A line longer than `MAX_LINE` bytes is cut into pieces; every piece but the
  last ends with `CONTINUED_MARK`.
- A partial line left without a newline is flushed, marked `partial`, after
  `PARTIAL_IDLE` seconds of silence or when the pipe closes; the newline
  that later ends it is not shown as an empty line.

Memory per stream is bounded by `MAX_LINE`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

MAX_LINE = 16 * 1024
PARTIAL_IDLE = 0.5
CONTINUED_MARK = " \u21a9"

LineSink = Callable[[str, bool], None]
"""Called with (text, partial) for every line."""


class LineReader:
    """Assembles lines from chunks of one pipe; calls `sink` once per line.

    Fed by the subprocess protocol (`data_received`, `connection_lost`).
    """

    def __init__(self, sink: LineSink, *, loop: asyncio.AbstractEventLoop) -> None:
        self._sink = sink
        self._loop = loop
        self._buf = bytearray()
        self._idle: asyncio.TimerHandle | None = None
        self._flushed_partial = False
        self.closed: asyncio.Future[None] = loop.create_future()

    def data_received(self, data: bytes) -> None:
        if self._flushed_partial and not self._buf:
            # The newline that ends a line already flushed as partial closes
            # that line; it is not an empty line of its own.
            data = data[2:] if data.startswith(b"\r\n") else data[1:] if data.startswith(b"\n") else data
        self._flushed_partial = False
        self._buf += data
        start = 0
        while True:
            end = self._buf.find(b"\n", start)
            if end < 0:
                break
            while end - start > MAX_LINE:  # a long line that arrived whole
                self._emit(bytes(self._buf[start : start + MAX_LINE]), partial=False, continued=True)
                start += MAX_LINE
            self._emit(bytes(self._buf[start:end]), partial=False)
            start = end + 1
        if start:
            del self._buf[:start]
        while len(self._buf) > MAX_LINE:
            piece = bytes(self._buf[:MAX_LINE])
            del self._buf[:MAX_LINE]
            self._emit(piece, partial=False, continued=True)
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self._flush_partial()
        if self._idle is not None:
            self._idle.cancel()
        if not self.closed.done():
            self.closed.set_result(None)

    def _arm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._buf:
            self._idle = self._loop.call_later(PARTIAL_IDLE, self._flush_partial)

    def _flush_partial(self) -> None:
        if self._buf:
            data = bytes(self._buf)
            self._buf.clear()
            self._emit(data, partial=True)
            self._flushed_partial = True

    def _emit(self, raw: bytes, *, partial: bool, continued: bool = False) -> None:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        cr = raw.rfind(b"\r")
        if cr >= 0:
            raw = raw[cr + 1 :]
        text = raw.decode("utf-8", errors="replace")
        if continued:
            text += CONTINUED_MARK
        self._sink(text, partial)
