"""Health probes against real sockets: a port nobody listens on is told apart
(the supervisor then looks again in 20 ms), from one that answers unhealthy."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from rthelpers import free_port

from lsq.manifest import Health
from lsq.runtime._health import probe


async def _answer(status: int) -> tuple[asyncio.AbstractServer, int]:
    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = await asyncio.start_server(reply, sock=sock)
    return server, sock.getsockname()[1]


async def _probe(check: Health, port: int, *, refused_before: bool = False) -> tuple[bool, bool, str]:
    result = await probe(check, host="127.0.0.1", port=port, cwd=Path("."), env={},
                         refused_before=refused_before)
    return result.ok, result.refused, result.detail


@pytest.mark.parametrize("refused_before", [False, True])
@pytest.mark.parametrize("check", [Health(http="/"), Health(tcp=True)])
def test_a_port_nobody_listens_on_is_refused(check: Health, refused_before: bool) -> None:
    port = free_port()
    ok, refused, detail = asyncio.run(_probe(check, port, refused_before=refused_before))
    assert (ok, refused) == (False, True)
    assert "refused" in detail.lower()
    # The same words whichever way it was found out.
    assert detail == asyncio.run(_probe(check, port))[2]


@pytest.mark.parametrize("status", [200, 503])
def test_a_port_that_listens_now_gets_the_real_probe_after_refusals(status: int) -> None:
    async def run() -> tuple[bool, bool, str]:
        server, port = await _answer(status)
        async with server:
            return await _probe(Health(http="/"), port, refused_before=True)

    ok, refused, detail = asyncio.run(run())
    assert (ok, refused) == (status == 200, False)
    assert status == 200 or "503" in detail


def test_an_unhealthy_answer_is_not_refused() -> None:
    async def run() -> tuple[tuple[bool, bool, str], tuple[bool, bool, str]]:
        bad, bad_port = await _answer(503)
        good, good_port = await _answer(200)
        async with bad, good:
            return await _probe(Health(http="/"), bad_port), await _probe(Health(http="/"), good_port)

    (ok, refused, detail), healthy = asyncio.run(run())
    assert (ok, refused) == (False, False)
    assert "503" in detail
    assert healthy[:2] == (True, False)


_CANCELLED_TWICE = """
import asyncio, contextlib, os, sys
from pathlib import Path

import psutil

from lsq.manifest import Health
from lsq.runtime._health import probe
from lsq.runtime._lock import become_subreaper


async def main() -> None:
    become_subreaper()  # as the runtime is: the command's `sleep` comes back to us
    check = Health(command="sleep 30; true", timeout=60)
    task = asyncio.create_task(probe(check, host="127.0.0.1", port=1, cwd=Path("."), env=dict(os.environ)))
    await asyncio.sleep(float(sys.argv[1]))
    task.cancel()  # the probe times out, or the replica stops...
    await asyncio.sleep(0)
    task.cancel()  # ...and the shut-down cancels it again while it ends the command
    with contextlib.suppress(asyncio.CancelledError):
        await task
    print(task.cancelled(), flush=True)
    await asyncio.sleep(1.0)  # what was left is dead by now, but no zombie is reaped
    print(sorted((p.name(), p.status()) for p in psutil.Process().children()))


asyncio.run(main())
"""


@pytest.mark.parametrize("after", [0.0, 0.5])
def test_a_health_command_cancelled_twice_leaves_nothing(after: float) -> None:
    # A probe cancelled while it ended its timed-out command used to stop
    # half-way: what the command started stayed as a zombie of the runtime
    # and was reported at shut-down as having left its service's group. At
    # 0.0 the cancels come while the command is being started.
    out = subprocess.run([sys.executable, "-c", _CANCELLED_TWICE, str(after)],
                         capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["True", "[]"], out.stdout + out.stderr
