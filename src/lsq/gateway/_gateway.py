"""The parent side: worker processes, port reservations, table updates."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lsq.errors import ServiceError
from lsq.gateway._stats import merge, summarize
from lsq.gateway._table import RoutingTable, ServiceEntry
from lsq.manifest._schema import Gateway as GatewaySettings

log = logging.getLogger("lsq.gateway")

_STOP_GRACE = 5.0


class _Worker:
    """One worker process and our end of its socket pair."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.proc = proc
        self.reader = reader
        self.writer = writer
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.task: asyncio.Task[None] | None = None

    def send(self, msg: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            self.writer.write(json.dumps(msg).encode() + b"\n")

    async def read_replies(self) -> None:
        while line := await self.reader.readline():
            msg = json.loads(line)
            future = self.waiting.pop(msg["id"], None)
            if future is not None and not future.done():
                future.set_result(msg)
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(
                    ServiceError(
                        f"gateway worker {self.proc.pid} exited while answering; "
                        "see the runtime log for its last words"
                    )
                )


class Gateway:
    """The gateway: stable ports for services, an ingress port, N workers.

    `update()` may be called before or after `start()`; port 0 in a table
    means "pick one", and the pick stays the same for that service (see
    `ports`).
    """

    def __init__(
        self, settings: GatewaySettings, *, log_dir: Path | None = None
    ) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self._workers: list[_Worker] = []
        self._ids = itertools.count(1)
        self._table = RoutingTable(ingress_port=settings.ingress_port)
        self._reserved: dict[str, socket.socket] = {}  # service or "" (ingress)
        self._ports: dict[str, int] = {}
        self._started = False

    @property
    def ports(self) -> Mapping[str, int]:
        """Actual listen port per service, and "" for the ingress port."""
        return dict(self._ports)

    @property
    def ingress_port(self) -> int | None:
        return self._ports.get("")

    async def start(self) -> None:
        """Start the workers; returns once every listener is bound."""
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        for index in range(self.settings.workers):
            self._workers.append(await self._spawn(index))
        self._started = True
        self._broadcast({"op": "table", "table": self._table.to_json()})
        await self.wait_applied()

    def update(self, table: RoutingTable | Mapping[str, Any]) -> None:
        """Route by `table` from now on; listeners open and close to match."""
        if not isinstance(table, RoutingTable):
            table = RoutingTable.from_json(table)
        self._table = self._resolve_ports(table)
        if self._started:
            self._broadcast({"op": "table", "table": self._table.to_json()})

    async def wait_applied(self) -> None:
        """Wait until every worker has applied every update sent so far."""
        await self._ask_all({"op": "sync"})

    async def stats(self) -> dict[str, Any]:
        """Counters of all workers, merged: per service and per replica."""
        replies = await self._ask_all({"op": "stats"})
        services: dict[str, dict[str, Any]] = {}
        replicas: dict[str, dict[str, Any]] = {}
        active: dict[str, int] = {}
        for reply in replies:
            data = reply["data"]
            for name, dump in data["services"].items():
                merge(services.setdefault(name, {}), dump)
            for rid, dump in data["replicas"].items():
                merge(replicas.setdefault(rid, {}), dump)
                active[rid] = active.get(rid, 0) + dump.get("active", 0)
        return {
            "services": {n: summarize(s) for n, s in services.items()},
            "replicas": {
                r: dict(summarize(s), active=active[r]) for r, s in replicas.items()
            },
        }

    async def stop(self) -> None:
        """Close the listeners, end the workers and wait for them."""
        for worker in self._workers:
            worker.send({"op": "stop"})
            worker.writer.close()
        for worker in self._workers:
            await self._reap(worker)
        self._workers.clear()
        for sock in self._reserved.values():
            sock.close()
        self._reserved.clear()
        self._started = False

    # -- internals --------------------------------------------------------

    async def _spawn(self, index: int) -> _Worker:
        ours, theirs = socket.socketpair()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "lsq.gateway._worker",
            str(theirs.fileno()),
            str(os.getpid()),
            pass_fds=(theirs.fileno(),),
            stdin=asyncio.subprocess.DEVNULL,
        )
        theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        worker = _Worker(proc, reader, writer)
        worker.task = asyncio.get_running_loop().create_task(worker.read_replies())
        access = (
            str(self.log_dir / "access.log")
            if self.log_dir and self.settings.access_log
            else None
        )
        worker.send(
            {
                "op": "config",
                "config": {
                    "header_timeout": self.settings.header_timeout,
                    "idle_timeout": self.settings.idle_timeout,
                    "trusted_proxies": list(self.settings.trusted_proxies),
                    "access_log": access,
                    "index": index,
                },
            }
        )
        log.info("gateway worker %d started (pid %d)", index, proc.pid)
        return worker

    async def _reap(self, worker: _Worker) -> None:
        try:
            await asyncio.wait_for(worker.proc.wait(), _STOP_GRACE)
        except TimeoutError:
            worker.proc.kill()
            await worker.proc.wait()
        if worker.task is not None:
            await worker.task

    def _broadcast(self, msg: dict[str, Any]) -> None:
        for worker in self._workers:
            worker.send(msg)

    async def _ask_all(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        futures = []
        for worker in self._workers:
            ident = next(self._ids)
            future: asyncio.Future[dict[str, Any]] = loop.create_future()
            worker.waiting[ident] = future
            worker.send(dict(msg, id=ident))
            futures.append(future)
        return list(await asyncio.gather(*futures))

    def _resolve_ports(self, table: RoutingTable) -> RoutingTable:
        """Reserve each listen port (port 0 picks one) and return the table with
        actual ports. Raises before changing anything if a port is taken."""
        wanted = {name: entry.port for name, entry in table.services.items()}
        if table.ingress_port is not None:
            wanted[""] = table.ingress_port
        fresh: dict[str, socket.socket] = {}
        try:
            for name, port in wanted.items():
                if name in self._reserved and port in (0, self._ports[name]):
                    continue
                fresh[name] = _reserve(name, port)
        except ServiceError:
            for sock in fresh.values():
                sock.close()
            raise
        for name in list(self._reserved):
            if name not in wanted or name in fresh:
                self._reserved.pop(name).close()
                self._ports.pop(name, None)
        for name, sock in fresh.items():
            self._reserved[name] = sock
            self._ports[name] = sock.getsockname()[1]
        services = {
            name: ServiceEntry(self._ports[name], e.backends, e.external, e.routes)
            for name, e in table.services.items()
        }
        return RoutingTable(services=services, ingress_port=self._ports.get(""))


def _reserve(name: str, port: int) -> socket.socket:
    # A bound, never-listening socket in the SO_REUSEPORT group holds the port
    # for the workers (which listen on their own sockets) and gets no connections.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        what = f"service {name!r}" if name else "the ingress"
        raise ServiceError(
            f"gateway: port {port} for {what} cannot be bound on 127.0.0.1 "
            f"({exc.strerror}); stop what holds it or leave the port out to have "
            "one assigned"
        ) from exc
    return sock
