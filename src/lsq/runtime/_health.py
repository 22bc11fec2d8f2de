"""Health probes: an HTTP GET, a TCP connect, or a command's exit code.

The HTTP probe speaks just enough HTTP/1.1 to read a status line over a raw
asyncio connection. A client library would cost more start-up time and memory
than every other part of a probe, and the runtime runs one probe per replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lsq.runtime._spawn import argv_for, group_gone, signal_group

if TYPE_CHECKING:
    from collections.abc import Coroutine

    # The runtime reads a frozen app (lsq.manifest._frozen), not the schema.
    from lsq.manifest import Health

_REAP_WAIT = 0.5  # seconds a killed health command's group may take to go


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str = ""
    refused: bool = False  # nothing listens on the port (yet)


async def probe(
    check: Health, *, host: str, port: int, cwd: Path, env: dict[str, str],
    refused_before: bool = False,
) -> ProbeResult:
    """Run one probe, bounded by the check's timeout.

    With `refused_before` (the last probe found nothing listening), an HTTP
    or TCP probe first tries a plain non-blocking connect: while a service
    starts, most probes are refused, and that answer costs a third of an
    asyncio connection attempt. The one connect that succeeds is closed at
    once and the real probe follows."""
    if refused_before and check.command is None and not _may_listen(host, port):
        what = f"GET {check.http}" if check.http is not None else f"tcp {host}:{port}"
        return _refused(what, host, port)
    try:
        async with asyncio.timeout(check.timeout):
            return await _probe(check, host=host, port=port, cwd=cwd, env=env)
    except TimeoutError:
        return ProbeResult(False, f"no answer within {check.timeout:g}s")


async def _probe(
    check: Health, *, host: str, port: int, cwd: Path, env: dict[str, str]
) -> ProbeResult:
    if check.http is not None:
        return await _http(host, port, check.http)
    if check.tcp:
        return await _tcp(host, port)
    assert check.command is not None
    return await _command(check.command, cwd, env)


class _StatusLine(asyncio.Protocol):
    """Sends one request and resolves with the response's status line."""

    def __init__(self, request: bytes, done: asyncio.Future[bytes]) -> None:
        self._request = request
        self._done = done
        self._buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        if self._request:
            transport.write(self._request)  # type: ignore[attr-defined]
        else:
            self._finish(b"")

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if b"\n" in self._buf or len(self._buf) > 4096:
            self._finish(self._buf.split(b"\n", 1)[0])

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(self._buf)

    def _finish(self, line: bytes) -> None:
        if not self._done.done():
            self._done.set_result(line)
        self._transport.close()


async def _exchange(host: str, port: int, request: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bytes] = loop.create_future()
    await loop.create_connection(lambda: _StatusLine(request, done), host, port)
    return await done


def _may_listen(host: str, port: int) -> bool:
    """False only if a connect to host:port is refused at once (as on the
    loopback, where the kernel answers before connect returns)."""
    family = _address_family(host)
    if family is None:  # a name, not an address: leave it to the real probe
        return True
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setblocking(False)
        return sock.connect_ex((host, port)) != errno.ECONNREFUSED


def _address_family(host: str) -> socket.AddressFamily | None:
    """AF_INET or AF_INET6 for an address written as one; None for a name.
    (Not getaddrinfo: its first call with a str imports the IDNA codec.)"""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return family
    return None


def _refused(what: str, host: str, port: int) -> ProbeResult:
    return ProbeResult(False, f"{what}: connection refused (nothing listens on {host}:{port} yet)",
                       refused=True)


async def _tcp(host: str, port: int) -> ProbeResult:
    try:
        await _exchange(host, port, b"")
    except ConnectionRefusedError:
        return _refused(f"tcp {host}:{port}", host, port)
    except OSError as exc:
        return ProbeResult(False, f"tcp {host}:{port}: {exc.strerror or exc}")
    return ProbeResult(True)


async def _http(host: str, port: int, path: str) -> ProbeResult:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "User-Agent: lsq-health\r\nConnection: close\r\n\r\n"
    ).encode()
    try:
        line = await _exchange(host, port, request)
    except ConnectionRefusedError:
        return _refused(f"GET {path}", host, port)
    except OSError as exc:
        return ProbeResult(False, f"GET {path}: {exc.strerror or exc}")
    parts = line.split()
    if len(parts) < 2 or not parts[1].isdigit():
        return ProbeResult(False, f"GET {path}: not an HTTP answer: {line[:40]!r}")
    status = int(parts[1])
    if 200 <= status < 400:
        return ProbeResult(True)
    return ProbeResult(False, f"GET {path} answered {status}")


async def _command(command: str | list[str], cwd: Path, env: dict[str, str]) -> ProbeResult:
    try:
        argv = argv_for(command, env)
    except OSError as exc:
        return ProbeResult(False, f"health command: {exc}")
    starting = asyncio.ensure_future(asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    ))
    try:
        # Shielded: a command cancelled while it starts is still ended below.
        proc = await asyncio.shield(starting)
        code = await proc.wait()
    except asyncio.CancelledError:
        # Timed out or no longer wanted: end the whole group, not only the
        # shell, and reap what it started. Those processes are reparented to
        # the runtime (a subreaper) and would stay as zombies, one more at
        # every probe that times out. A shut-down that cancels the probe
        # again meanwhile must not cut that short: it would find them.
        await _to_the_end(_end_command(starting))
        raise
    except OSError as exc:
        return ProbeResult(False, f"health command: {exc}")
    return ProbeResult(code == 0, "" if code == 0 else f"health command exited {code}")


async def _end_command(starting: asyncio.Future[asyncio.subprocess.Process]) -> None:
    try:
        proc = await starting
    except OSError:
        return
    signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()
    await group_gone(proc.pid, _REAP_WAIT)


async def _to_the_end(work: Coroutine[object, object, None]) -> None:
    """Await `work` until it is done, however often the caller is cancelled
    meanwhile; the caller re-raises its cancellation after. `work` is bounded."""
    task = asyncio.ensure_future(work)
    while not task.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)
    task.result()
