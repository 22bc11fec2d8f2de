"""What `lsq up -d` and `lsq ps` print: start-up progress, the outcome, the
table of services. Free of click, so that `lsq up -d` starting from the
manifest cache (`lsq.cli._early`) reports without loading the CLI."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

from lsq.errors import StartupFailed


def _echo(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def follow_detached(
    name: str, state: Path, pid: int, read_fd: int, log_start: int, timeout: float | None
) -> None:
    with open(read_fd, "rb") as pipe:
        done = follow_startup(pipe, timeout or 600)
    if done is None:
        _, code = os.waitpid(pid, 0)
        status_code = os.waitstatus_to_exitcode(code)
        if status_code < 0:
            raise StartupFailed(
                f"the runtime was killed by {signal_name(-status_code)} during start-up"
            )
        if status_code == 0:
            raise StartupFailed(
                "the app was stopped (by `lsq down` or a signal) before it was up"
            )
        raise StartupFailed(
            f"the runtime exited with code {status_code}: {tail(state / 'runtime.log', log_start)}"
        )
    status = done["status"]
    if done["done"] != "ready":
        raise StartupFailed(
            f"start-up failed: {done['reason']}. The runtime keeps running: "
            "inspect with `lsq ps` and `lsq logs`, stop it with `lsq down`"
        )
    seconds = status["startup"].get("seconds", "?")
    _echo(f"lsq: {name} is up (runtime pid {pid}) in {seconds}s")
    print_table(status)
    token = (state / "token").read_text().strip()
    _echo(f"dashboard: http://127.0.0.1:{done['port']}/?token={token}")
    if status.get("ingress"):
        _echo(f"ingress:   {status['ingress']}")



def follow_startup(pipe: IO[bytes], timeout: float) -> dict[str, Any] | None:
    """Echo the runtime's start-up events until it reports the outcome;
    None if the runtime closed the pipe first (it exited)."""
    import select

    deadline = time.monotonic() + timeout
    fd = pipe.fileno()
    # poll, not select: a caller may have left us 1024 descriptors or more.
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    buffer = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(min(left, 1e6) * 1000):
            raise StartupFailed(
                f"not up within {timeout:g}s; "
                "inspect with `lsq ps`, stop with `lsq down`"
            )
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            message = json.loads(line)
            if "done" in message:
                return dict(message)
            event = message["event"]
            if event["kind"] == "runtime" and event["message"].startswith("start-up failed"):
                continue  # the error that follows says it
            who = event["instance"] or event["service"] or "lsq"
            _echo(f"  {who}: {event['message']}")



def tail(path: Path, since: int = 0, lines: int = 3) -> str:
    """The runtime's last notes from byte `since` on (this run's part of a log
    that runs append to), without traceback lines (see the log for those)."""
    try:
        with path.open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return "no output"
    if not text:
        return f"no output (log: {path})"
    # A runtime that failed says why in one error line: that line alone, as
    # the lines before it may be another runtime's (two starts at once).
    errors = [t for t in text if t.startswith("lsq: error:")]
    if errors:  # said again under the CLI's own "lsq: error:"
        return errors[-1].removeprefix("lsq: error: ") + f" (full log: {path})"
    notes = [t for t in text if t.startswith(("lsq", "  lsq")) or "| " in t]
    return " | ".join((notes or text)[-lines:]) + f" (full log: {path})"



def signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"



class Table:
    """Plain aligned columns. `lsq ps` and `lsq up -d` print a table and exit;
    a rich table would cost more to import than the whole command takes."""

    def __init__(self, headers: tuple[str, ...]) -> None:
        self.rows: list[tuple[str, ...]] = [headers]

    def add_row(self, *cells: str) -> None:
        self.rows.append(tuple(cells))

    def render(self) -> str:
        widths = [max(len(row[i]) for row in self.rows) for i in range(len(self.rows[0]))]
        return "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in self.rows
        )



def print_table(status: dict[str, object]) -> None:
    table = Table(("SERVICE", "STATE", "HEALTH", "ADDRESS", "INSTANCE", "PID", "PORT", "RESTARTS", "DETAIL"))
    now = time.time()
    for svc in status["services"]:  # type: ignore[attr-defined]
        first = True
        instances = svc["instances"] or [{}]
        for inst in instances:
            detail = str(inst.get("reason") or "")
            if inst.get("next_retry"):
                detail = f"next retry in {max(0, inst['next_retry'] - now):.1f}s; " + detail
            if inst.get("ejected_until") and inst["ejected_until"] > now:
                detail = f"ejected by the gateway for {inst['ejected_until'] - now:.0f}s; " + detail
            if inst.get("last_exit") is not None and inst.get("state") in ("backoff", "failed", "exited"):
                code = int(inst["last_exit"])
                last = f"killed by {signal_name(-code)}" if code < 0 else f"exit code {code}"
                if last not in detail:
                    detail = f"last {last}; " + detail
            breaker = svc.get("breaker") or {}
            state = svc["state"]
            if breaker.get("state") not in (None, "closed"):
                state += f" (circuit {breaker['state']})"
            table.add_row(
                svc["name"] if first else "",
                state if first else "",
                svc["health"] if first else "",
                svc["address"] if first else "",
                str(inst.get("id", "")),
                str(inst.get("pid") or ""),
                str(inst.get("port") or ""),
                str(inst.get("restarts", "")),
                detail.strip("; "),
            )
            first = False
    _echo(table.render())
