"""The parent side: worker processes, port reservations, table updates."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import os
import socket
import sys
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsq.errors import GatewayError
from lsq.gateway import _compiled
from lsq.gateway._outlier import EVENTS_KEPT
from lsq.gateway._stats import merge, summarize
from lsq.gateway._table import RoutingTable

if TYPE_CHECKING:  # the runtime reads a frozen app (lsq.manifest._frozen), not the schema
    from lsq.manifest._schema import Gateway as GatewaySettings

log = logging.getLogger("lsq.gateway")

_STOP_GRACE = 5.0
_STABLE_AFTER = 10.0  # a worker that lived this long restarts without a pause
_RESTART_BASE, _RESTART_MAX = 0.1, 5.0
_ASK_TIMEOUT = 10.0  # a worker that does not answer sync/stats in this long is skipped
_SPANS_KEPT = 5000  # hop spans waiting for `stats(take_spans=True)`
_REPLY_LIMIT = 16 << 20  # bytes in one reply line from a worker
_BREAKER_RANK = {"closed": 0, "half-open": 1, "open": 2}


class _ForkedProcess:
    """The parts of `asyncio.subprocess.Process` the gateway uses, for a
    worker forked by `prefork_worker` rather than started with exec."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._done: asyncio.Future[int] | None = None

    async def wait(self) -> int:
        if self.returncode is not None:
            return self.returncode
        loop = asyncio.get_running_loop()
        if self._done is None:
            self._done = loop.create_future()
            done = self._done
            try:
                pidfd = os.pidfd_open(self.pid)
            except (AttributeError, OSError):  # no pidfd: a thread waits
                loop.run_in_executor(None, self._collect, done, loop)
            else:
                def readable() -> None:
                    loop.remove_reader(pidfd)
                    os.close(pidfd)
                    self._collect(done, None)

                loop.add_reader(pidfd, readable)
        return await asyncio.shield(self._done)

    def _collect(self, done: asyncio.Future[int], loop: asyncio.AbstractEventLoop | None) -> None:
        try:
            _, status = os.waitpid(self.pid, 0)
            code = os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # reaped elsewhere: its status is lost
            code = -1
        self.returncode = code

        def settle() -> None:
            if not done.done():
                done.set_result(code)

        if loop is None:
            settle()
        else:
            loop.call_soon_threadsafe(settle)

    def kill(self) -> None:
        if self.returncode is None:
            os.kill(self.pid, 9)


_preforked: tuple[_ForkedProcess, socket.socket] | None = None


def prefork_worker() -> None:
    """Fork the first gateway worker now, before the runtime's event loop
    and threads exist; `Gateway.start` then takes it instead of starting a
    new interpreter.

    A worker started with exec pays for an interpreter and for importing
    asyncio and uvloop again: about 60 ms of CPU, while 50 services are
    starting on the same cores. A fork shares what the runtime has already
    loaded. A worker that is replaced later (it died) is started with exec.
    """
    global _preforked
    if _preforked is not None:
        return
    ours, theirs = socket.socketpair()
    parent = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the worker: never returns into the runtime's code
        code = 1
        try:
            import gc
            import signal

            # The runtime notes stop signals for its loop to act on
            # (lsq._signals); the worker must not: its parent's death comes as
            # SIGTERM, which ends it from here on. Ctrl-C and a hang-up go to
            # the whole group and are the runtime's to handle.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            gc.freeze()  # the runtime's objects stay shared, not copied on a GC pass
            gc.enable()  # a runtime starting up may run without it (lsq.cli._early)
            _name_process(b"lsq-gateway")
            # Closed below with the rest, `ours` must not close later a number
            # used again by then; `theirs` is the worker's channel, owned by it.
            ours.detach()
            fd = theirs.detach()
            os.closerange(3, fd)
            os.closerange(fd + 1, 1 << 16)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            from lsq.gateway import _worker

            _worker.main([str(fd), str(parent)])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    theirs.close()
    _preforked = (_ForkedProcess(pid), ours)


def _name_process(name: bytes) -> None:
    # What `ps -o comm`, top and psutil's name() show: a forked worker
    # otherwise looks like the `lsq up` it came from.
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name), 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def discard_preforked() -> None:
    """End a pre-forked worker nobody took (the gateway never started)."""
    global _preforked
    if _preforked is None:
        return
    proc, ours = _preforked
    _preforked = None
    ours.close()  # it exits when its control channel closes
    try:
        os.waitpid(proc.pid, 0)
    except ChildProcessError:
        pass


class _Worker:
    """One worker process and our end of its socket pair."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process | _ForkedProcess,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.proc = proc
        self.reader = reader
        self.writer = writer
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.task: asyncio.Task[None] | None = None
        self.alive = True
        self.seen_seq = 0  # the last of this worker's events already merged
        self.born = time.monotonic()
        self.crashes = 0  # quick deaths in a row of the workers in this slot

    def send(self, msg: dict[str, Any]) -> None:
        if self.alive and not self.writer.is_closing():
            self.writer.write(json.dumps(msg).encode() + b"\n")

    async def read_replies(self) -> None:
        try:
            while line := await self.reader.readline():
                msg = json.loads(line)
                future = self.waiting.pop(msg["id"], None)
                if future is not None and not future.done():
                    future.set_result(msg)
        except ConnectionError:
            pass
        self.alive = False
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(
                    GatewayError(
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
        self._events: deque[dict[str, Any]] = deque(maxlen=EVENTS_KEPT)
        self._seq = 0
        self._spans: deque[dict[str, Any]] = deque(maxlen=_SPANS_KEPT)
        self._watchers: set[asyncio.Task[None]] = set()

    @property
    def ports(self) -> Mapping[str, int]:
        """Actual listen port per service, and "" for the ingress port."""
        return dict(self._ports)

    @property
    def ingress_port(self) -> int | None:
        return self._ports.get("")

    @property
    def worker_pids(self) -> list[int]:
        """Pids of the worker processes now running (a restarted one has a new pid)."""
        return [w.proc.pid for w in self._workers if w.alive]

    async def start(self) -> None:
        """Start the workers; returns once every listener is bound."""
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        for index in range(self.settings.workers):
            self._workers.append(await self._spawn(index))
        for worker in self._workers:
            self._watch(worker)
        self._started = True
        self._broadcast({"op": "table", "table": self._table.to_json()})
        if not await self.wait_applied():
            # Start-up must not report an app as up while nothing serves it.
            raise GatewayError(
                "a gateway worker did not take the routing table (it exited or "
                "did not answer); see .lsq/runtime.log"
            )

    def update(self, table: RoutingTable | Mapping[str, Any]) -> None:
        """Route by `table` from now on; listeners open and close to match."""
        if not isinstance(table, RoutingTable):
            table = RoutingTable.from_json(table)
        self._table = self._resolve_ports(table)
        if self._started:
            self._broadcast({"op": "table", "table": self._table.to_json()})

    async def wait_applied(self) -> bool:
        """Wait until every worker has applied every update sent so far;
        False if one is down or did not answer."""
        answers = await self._ask_all({"op": "sync"})
        return len(answers) == len(self._workers) and None not in answers

    async def set_policies(self, on: bool) -> None:
        """Switch the policy machinery on or off in every worker.

        For the benchmark only, which compares the two in one process (see
        bench/gateway/run.py); an app always runs with policies on.
        """
        await self._ask_all({"op": "policies", "on": on})

    async def stats(self, *, take_spans: bool = False) -> dict[str, Any]:
        """Counters of all workers, merged: per service and per replica.

        Also the breaker per service, ejection state per replica, retries,
        fault hits and the recent `events` (each with a `seq` that only
        grows). A worker that is down (being restarted) is left out.

        Every call collects the workers' hop spans into a buffer (the newest
        `_SPANS_KEPT`); with `take_spans=True` the answer's `spans` hands them
        over and empties it, so only one reader (the runtime) should take.
        """
        asked = [w for w in self._workers if w.alive]
        replies = await self._ask(asked, lambda w: {"op": "stats", "since": w.seen_seq})
        services: dict[str, dict[str, Any]] = {}
        replicas: dict[str, dict[str, Any]] = {}
        extra: dict[str, dict[str, Any]] = {}
        breakers: dict[str, dict[str, Any]] = {}
        retries: dict[str, int] = {}
        hits: dict[str, int] = {}
        for worker, reply in zip(asked, replies, strict=True):
            if reply is None:
                continue
            data = reply["data"]
            for name, dump in data["services"].items():
                merge(services.setdefault(name, {}), dump)
            for rid, dump in data["replicas"].items():
                merge(replicas.setdefault(rid, {}), dump)
                _merge_replica(extra.setdefault(rid, {}), dump)
            for name, breaker in data.get("breakers", {}).items():
                if _BREAKER_RANK[breaker["state"]] >= _BREAKER_RANK[
                    breakers.get(name, {}).get("state", "closed")
                ]:
                    breakers[name] = breaker
            _add(retries, data.get("retries", {}))
            _add(hits, data.get("fault_hits", {}))
            self._take_events(worker, data.get("events", []))
            self._spans.extend(data.get("spans", ()))
        closed = {"state": "closed", "since": None, "cause": ""}
        spans = list(self._spans) if take_spans else []
        if take_spans:
            self._spans.clear()
        return {
            "spans": spans,
            "services": {
                n: dict(summarize(s), breaker=breakers.get(n, closed), retries=retries.get(n, 0))
                for n, s in services.items()
            },
            "replicas": {r: dict(summarize(s), **extra[r]) for r, s in replicas.items()},
            "fault_hits": hits,
            "events": list(self._events),
        }

    def _take_events(self, worker: _Worker, events: list[dict[str, Any]]) -> None:
        for event in events:
            if event["seq"] <= worker.seen_seq:
                continue
            worker.seen_seq = event["seq"]
            self._seq += 1
            self._events.append(dict(event, seq=self._seq))

    async def stop(self) -> None:
        """Close the listeners, end the workers and wait for them."""
        self._started = False
        for task in self._watchers:
            task.cancel()
        self._watchers.clear()
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
        global _preforked
        proc: asyncio.subprocess.Process | _ForkedProcess
        if _preforked is not None and not self._started:
            proc, ours = _preforked
            _preforked = None
        else:
            ours, theirs = socket.socketpair()
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "lsq.gateway._worker",
                str(theirs.fileno()),
                str(os.getpid()),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                env=_compiled.worker_env(),
            )
            theirs.close()
        # A stats reply carries a worker's hop spans (up to 5,000) on one line.
        reader, writer = await asyncio.open_unix_connection(
            sock=ours, limit=_REPLY_LIMIT
        )
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
            try:
                worker.proc.kill()
            except ProcessLookupError:  # it ended after all
                pass
            await worker.proc.wait()
        if worker.task is not None:
            await worker.task

    def _broadcast(self, msg: dict[str, Any]) -> None:
        for worker in self._workers:
            worker.send(msg)

    async def _ask_all(self, msg: dict[str, Any]) -> list[dict[str, Any] | None]:
        return await self._ask([w for w in self._workers if w.alive], lambda w: msg)

    async def _ask(
        self, workers: list[_Worker], make: Any
    ) -> list[dict[str, Any] | None]:
        """Ask each worker; None for one that died or did not answer in time."""
        loop = asyncio.get_running_loop()
        futures = []
        for worker in workers:
            ident = next(self._ids)
            future: asyncio.Future[dict[str, Any]] = loop.create_future()
            worker.waiting[ident] = future
            worker.send(dict(make(worker), id=ident))
            futures.append(asyncio.wait_for(future, _ASK_TIMEOUT))
        results = await asyncio.gather(*futures, return_exceptions=True)
        return [r if isinstance(r, dict) else None for r in results]

    def _watch(self, worker: _Worker) -> None:
        task = asyncio.get_running_loop().create_task(self._restart_when_dead(worker))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _restart_when_dead(self, worker: _Worker) -> None:
        """A worker that dies while the gateway runs is replaced at once."""
        code = await worker.proc.wait()
        if not self._started or worker not in self._workers:
            return
        log.error(
            "gateway worker (pid %d) exited with %s; starting a new one",
            worker.proc.pid,
            code,
        )
        worker.alive = False
        if worker.task is not None:
            await worker.task
        # One that keeps dying at once (a bug, a broken install) is started
        # again after a growing pause, not in a tight loop.
        crashes = worker.crashes + 1 if time.monotonic() - worker.born < _STABLE_AFTER else 0
        if crashes:
            await asyncio.sleep(min(_RESTART_MAX, _RESTART_BASE * 2 ** min(crashes - 1, 20)))
        if not self._started or worker not in self._workers:
            return
        index = self._workers.index(worker)
        fresh = await self._spawn(index)
        fresh.crashes = crashes
        if not self._started:
            fresh.send({"op": "stop"})
            fresh.writer.close()
            await self._reap(fresh)
            return
        self._workers[index] = fresh
        fresh.send({"op": "table", "table": self._table.to_json()})
        self._watch(fresh)

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
        except GatewayError:
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
        ports = self._ports
        services = {
            name: e if e.port == ports[name] else dataclasses.replace(e, port=ports[name])
            for name, e in table.services.items()
        }
        return RoutingTable(services=services, ingress_port=self._ports.get(""))


def _reserve(name: str, port: int) -> socket.socket:
    # A bound, never-listening socket in the SO_REUSEPORT group holds the port
    # for the workers (which listen on their own sockets) and gets no connections.
    # No SO_REUSEADDR: with it, another program's SO_REUSEADDR socket could bind
    # and listen on the port while no worker listens (at start-up, or while a
    # dead worker is replaced) and take our clients.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        what = f"service {name!r}" if name else "the ingress"
        raise GatewayError(
            f"gateway: port {port} for {what} cannot be bound on 127.0.0.1 "
            f"({exc.strerror}); stop what holds it or leave the port out to have "
            "one assigned"
        ) from exc
    return sock


def _merge_replica(into: dict[str, Any], dump: dict[str, Any]) -> None:
    """Policy state of one replica across workers: the worst of each."""
    into["active"] = into.get("active", 0) + dump.get("active", 0)
    until = dump.get("ejected_until")
    if until is not None and (into.get("ejected_until") or 0) < until:
        into["ejected_until"] = until
    into.setdefault("ejected_until", None)
    into["ejections"] = into.get("ejections", 0) + dump.get("ejections", 0)
    into["consecutive_failures"] = max(
        into.get("consecutive_failures", 0), dump.get("consecutive_failures", 0)
    )
    into["ewma_ms"] = max(into.get("ewma_ms", 0.0), dump.get("ewma_ms", 0.0))


def _add(into: dict[str, int], more: dict[str, int]) -> None:
    for key, value in more.items():
        into[key] = into.get(key, 0) + value
