"""Warm start: on `lsq up -d` from the manifest cache, the services that
started at once last time are started again before the runtime has loaded.

Once start-up is ready, the runtime writes `.lsq/launch.json` (mode 0600):
for each replica that waited for nothing (no `depends_on`, no data store to
provision beyond an SQLite file), the command, folder and environment it
started with, and the control port and OTLP secret that environment named.
It is tied to the manifest cache's header, which says what the app was made
from (files by content, the environment, LSQ's code).

The next `lsq up -d` that finds the cache current forks the runtime, which,
before it imports the schema, asyncio or anything else, takes the app lock,
starts the guard, binds the same control port and starts those replicas on
fresh private ports (`begin`). The runtime then loads as always. When a
replica comes to start, it `claim`s its early start, which it keeps only if
the command, folder and environment are exactly what it would use now;
otherwise that process is killed and the replica starts as usual. Starts
nobody claims are ended once start-up is over, or at shut-down. So a stale
plan costs time, never a service started wrongly for good.

About 0.1 s of the runtime's start (the schema, the runtime's own modules,
its set-up) then overlaps the services' own start instead of preceding it.
An early start's output waits in its pipe (64 KiB) until it is claimed,
a fraction of a second later.

A first start (no current cache, so no plan on disk) starts replicas early
too: once the CLI has checked the manifest, it computes the same kind of
plan (`lsq.runtime._env.first_plan`) and sends it to the runtime it forked before loading
(`lsq.cli._daemon.prestart`), ahead of the app itself; the runtime starts
them (`begin_first`) while it is still loading, on a control port of its
own choosing. Only replicas that wait for nothing qualify: no
`depends_on`, no data store, no fixed port.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsq.runtime._lock import AppLock, GuardProcess, become_subreaper
from lsq.manifest._cache import header
from lsq.runtime._ports import REPLICA_RANGE, StablePorts, stable_candidate
from lsq.runtime._env import OTLP_PLACEHOLDER
from lsq.runtime._start import _spawner, _Start, argv_for

if TYPE_CHECKING:
    import subprocess
    from concurrent.futures import Future

    from lsq.runtime._runtime import Runtime

PLAN_NAME = "launch.json"


@dataclass
class EarlyStart:
    """One replica started before the runtime loaded."""

    id: str
    port: int
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    start: _Start
    future: Future[tuple[subprocess.Popen[bytes], int, int]]

    def matches(self, argv: list[str], cwd: Path, env: dict[str, str]) -> bool:
        return self.argv == argv and self.cwd == cwd and self.env == env

    def abandon(self) -> None:
        self.start.abandon()


@dataclass
class Early:
    """What `begin` took and started, until the runtime adopts it."""

    lock: AppLock
    guard: GuardProcess
    control: socket.socket | None = None
    otlp_secret: str | None = None
    starts: dict[str, EarlyStart] = field(default_factory=dict)


early: Early | None = None
"""Set by `begin` in a runtime forked from the manifest cache."""


def begin(state: Path) -> None:
    """Take the lock and the guard, and start the plan's replicas, if the
    plan belongs to the current manifest cache. Does nothing otherwise (or
    if the lock is held: the usual start then reports it)."""
    try:
        plan = json.loads((state / PLAN_NAME).read_text())
    except (OSError, ValueError):
        return
    cache = header(state)
    if not _well_formed(plan) or cache is None or plan["cache"] != cache[1]:
        return  # a damaged or foreign plan is ignored, as if there were none
    _begin(state, plan["starts"], plan["control_port"], plan.get("otlp_secret"))


def begin_first(plan: dict[str, Any]) -> int:
    """In the runtime a first `lsq up -d` forked, before it has loaded: take
    the lock and the guard, bind a control port and start the replicas of
    `lsq.runtime._env.first_plan`. Returns how many it started."""
    state = Path(plan["state"])
    state.mkdir(parents=True, exist_ok=True)
    _begin(state, plan["starts"], 0, secrets.token_urlsafe(24))
    return len(early.starts) if early is not None else 0


def _begin(state: Path, starts: list[dict[str, Any]], control_port: int,
           otlp_secret: str | None) -> None:
    global early
    lock = AppLock(state)
    try:
        lock.acquire()
    except Exception:  # held by a runtime already running: not ours to report
        return
    try:
        become_subreaper()
        guard = GuardProcess(app_dir=state.parent)
    except BaseException:
        lock.release()  # the usual start takes it again, and reports
        raise
    found = Early(lock, guard)
    early = found
    control = _bind(control_port)
    if control is None:  # the environment named that port: nothing would match
        return
    found.control = control
    found.otlp_secret = otlp_secret
    port = control.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}/otlp/{otlp_secret}"
    taken = StablePorts(state / "ports.json").taken() | {port}
    base = dict(os.environ)
    for entry in starts:
        if not all(os.path.isdir(p) for p in entry.get("needs", [])):
            continue
        port = stable_candidate(taken, REPLICA_RANGE)
        taken.add(port)
        env = dict(base)
        env.update(entry["env"])
        if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") == OTLP_PLACEHOLDER:
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        env["PORT"] = str(port)
        argv = argv_for(entry["command"], env)
        cwd = Path(entry["cwd"])
        start = _Start(argv, cwd, env, found.guard.send)
        future = _spawner().submit(start.run)
        found.starts[entry["id"]] = EarlyStart(entry["id"], port, argv, cwd, env, start, future)


def _well_formed(plan: object) -> bool:
    """Is `plan` shaped as `record` writes it? Anything else is ignored."""
    if not isinstance(plan, dict) or not isinstance(plan.get("cache"), str):
        return False
    port = plan.get("control_port")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        return False
    if not isinstance(plan.get("otlp_secret"), (str, type(None))):
        return False
    starts = plan.get("starts")
    if not isinstance(starts, list):
        return False
    for entry in starts:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            return False
        command, env, needs = entry.get("command"), entry.get("env"), entry.get("needs", [])
        if not (isinstance(command, str) or (
                isinstance(command, list) and command and all(isinstance(a, str) for a in command))):
            return False
        if not isinstance(entry.get("cwd"), str) or not isinstance(env, dict):
            return False
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            return False
        if not isinstance(needs, list) or not all(isinstance(p, str) for p in needs):
            return False
    ids = [entry["id"] for entry in starts]
    return len(set(ids)) == len(ids)  # one early start per replica


def _bind(port: int) -> socket.socket | None:
    """A listening control socket on `port` (0: any free one); None if taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(100)
    except OSError:
        sock.close()
        return None
    return sock


def settle(timeout: float) -> bool:
    """Wait until every early start has left its thread; False on timeout."""
    if early is None or not early.starts:
        return True
    from concurrent.futures import wait

    _, pending = wait([s.future for s in early.starts.values()], timeout=timeout)
    return not pending


def claim(instance_id: str) -> EarlyStart | None:
    """The early start of this replica, once."""
    if early is None:
        return None
    return early.starts.pop(instance_id, None)


def pending_ports() -> set[int]:
    """Ports of early starts nobody has claimed yet (no one else may take them)."""
    if early is None:
        return set()
    return {s.port for s in early.starts.values()}


def discard() -> int:
    """End the early starts nobody claimed; how many there were."""
    if early is None:
        return 0
    left = list(early.starts.values())
    early.starts.clear()
    for start in left:
        start.abandon()
    return len(left)


def give_up() -> None:
    """No runtime will adopt what `begin` took (the CLI gave up before the
    hand-over): end the early starts, tell the guard all is well, let go of
    the lock."""
    global early
    if early is None:
        return
    from concurrent.futures import wait

    futures = [s.future for s in early.starts.values()]
    discard()
    wait(futures, timeout=5.0)  # a start still in its thread ends itself (`_Start.run`)
    found, early = early, None
    found.guard.close()
    if found.control is not None:
        found.control.close()
    found.lock.release()


def record(runtime: Runtime) -> None:
    """Write the plan for the next start from the manifest cache (see above)."""
    state = runtime.dir
    path = state / PLAN_NAME
    cache = header(state)
    sup = runtime.sup
    app = runtime.app
    if (
        cache is None or sup is None or app.overrides
        or cache[0].get("manifest") != str(app.path) or cache[0].get("sources") != app.sources
    ):  # the cache on disk is not the one this app came from
        path.unlink(missing_ok=True)
        return
    from lsq.runtime import _data

    starts: list[dict[str, Any]] = []
    base = dict(os.environ)  # os.environ decodes each value it is asked for
    for unit in sup.units.values():
        svc = unit.service
        if unit.external or unit.blocked or svc.depends_on or _data.kind(svc.data) == "postgres":
            continue
        for replica in unit.replicas:
            launched = replica.launched
            if launched is None:
                continue
            command, cwd, env = launched
            # An SQLite store's folder must still be there (`lsq down
            # --volumes` removes it; provisioning makes it again, later).
            needs = [str(state / "data" / unit.name)] if svc.data else []
            starts.append({
                "id": replica.id,
                "command": command,
                "cwd": str(cwd),
                "env": {k: v for k, v in env.items() if k != "PORT" and base.get(k) != v},
                "needs": needs,
            })
    plan = {
        "cache": cache[1],
        "control_port": runtime.control_port,
        "otlp_secret": runtime.otlp_secret,
        "starts": starts,
    }
    tmp = path.with_name(PLAN_NAME + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(json.dumps(plan))  # json.dump would encode in Python, bit by bit
        os.replace(tmp, path)
    except OSError:
        return
