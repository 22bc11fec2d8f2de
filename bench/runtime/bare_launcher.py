#!/usr/bin/env python3
"""The bare launcher as a program: the start-up benchmark's floor when the
launcher, like LSQ, honcho and circus, has to start its own interpreter.

Usage: python bare_launcher.py PYTHON SCRIPT PORT...

Starts `PYTHON SCRIPT` once per port (with PORT set), all at once, polls
each one's `/` every 20 ms, prints "up" once all answer, then waits for
SIGTERM and ends them. Nothing but asyncio is loaded before the first start.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from _poll import wait_healthy


async def main(python: str, script: str, ports: list[int]) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    procs = []
    for port in ports:
        procs.append(
            await asyncio.create_subprocess_exec(
                python,
                script,
                env=dict(os.environ, PORT=str(port)),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        )
    await wait_healthy(ports, 60.0)
    sys.stdout.write("up\n")
    sys.stdout.flush()
    await stop.wait()
    for proc in procs:
        proc.terminate()
    await asyncio.gather(*(proc.wait() for proc in procs))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3:]]))
