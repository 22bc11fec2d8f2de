"""Shared pieces of the runtime benchmarks: the trivial service, the peer
supervisors (honcho, circus, supervisord), a bare asyncio launcher, and a health poller.

Every candidate runs the same service script with the same interpreter (the
base Python the project venv was made from), on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

import _poll

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "bench" / "README.md"
LSQ = ROOT / ".venv" / "bin" / "lsq"
PEERS_VENV = Path(os.environ.get("LSQ_BENCH_PEERS", "/tmp/lsq-bench-peers"))
# The interpreter every service runs under: the real binary, not a shim.
SERVICE_PYTHON = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0

SERVICE_SOURCE = """\
import http.server
import os


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


port = int(os.environ["PORT"])
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


@dataclass
class Running:
    """One candidate with its services up."""

    name: str
    pids: list[int]
    stop: Callable[[], None]
    manager_pids: list[int] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)
    folder: Path | None = None


# ---------------------------------------------------------------- helpers


def print_machine() -> None:
    """Date, cores, CPU model and load, so a figure can be read in context."""
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"{stamp}; nproc {os.cpu_count()}; {model}; load average {load}")


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="lsq-bench-rt-"))


def write_service(folder: Path) -> Path:
    path = folder / "svc.py"
    path.write_text(SERVICE_SOURCE)
    return path


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out now; all held at once so they differ."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def ensure_peers() -> Path:
    """The venv holding honcho, circus and supervisord, kept apart from the project's."""
    tools = ("circusd", "honcho", "supervisord")
    if all((PEERS_VENV / "bin" / tool).exists() for tool in tools):
        return PEERS_VENV
    print(f"creating {PEERS_VENV} and installing honcho, circus, supervisor into it")
    if not (PEERS_VENV / "bin" / "pip").exists():
        subprocess.run([SERVICE_PYTHON, "-m", "venv", str(PEERS_VENV)], check=True)
    pip = str(PEERS_VENV / "bin" / "pip")
    subprocess.run([pip, "install", "-q", "honcho", "circus", "supervisor"], check=True)
    return PEERS_VENV


def summary(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def fmt3(values: list[float], unit: str = "s", digits: int = 2) -> str:
    lo, med, hi = summary(values)
    return f"{lo:.{digits}f} / {med:.{digits}f} / {hi:.{digits}f} {unit}".rstrip()


# ----------------------------------------------------------------- health


def wait_healthy_sync(ports: list[int], timeout: float = START_TIMEOUT) -> None:
    """Poll each port's `/` every 20 ms until all answer 200 (`_poll`)."""
    asyncio.run(_poll.wait_healthy(ports, timeout))


# -------------------------------------------------------------- processes


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def handles(pids: list[int]) -> list[psutil.Process]:
    return [psutil.Process(pid) for pid in pids]


def wait_gone(procs: list[psutil.Process], timeout: float = STOP_TIMEOUT) -> None:
    """Wait until every process has exited (a zombie counts as exited)."""
    deadline = time.monotonic() + timeout
    left = list(procs)
    while left:
        left = [p for p in left if _alive(p)]
        if left and time.monotonic() > deadline:
            raise TimeoutError(f"{len(left)} processes still alive")
        time.sleep(0.005)


def service_children(manager: int, script: Path) -> list[int]:
    kids = psutil.Process(manager).children(recursive=True)
    return [k.pid for k in kids if str(script) in " ".join(_cmdline(k))]


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return [str(part) for part in proc.cmdline()]
    except psutil.Error:
        return []


def terminate_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


# -------------------------------------------------------------------- LSQ


def lsq_manifest(folder: Path, script: Path, count: int) -> None:
    lines = ["name: rtbench", "services:"]
    for i in range(count):
        lines += [
            f"  s{i:02d}:",
            f"    command: [{SERVICE_PYTHON}, {script}]",
            "    health: {http: /}",
        ]
    (folder / "lsq.yaml").write_text("\n".join(lines) + "\n")


def lsq_ps(folder: Path) -> dict[str, Any]:
    out = subprocess.run(
        [str(LSQ), "ps", "--json"], cwd=folder, check=True, capture_output=True
    ).stdout
    data: dict[str, Any] = json.loads(out)
    return data


def lsq_instances(folder: Path) -> list[tuple[int, int]]:
    """(pid, port) of every instance per `lsq ps --json`."""
    found = []
    for svc in lsq_ps(folder)["services"]:
        for inst in svc["instances"]:
            found.append((int(inst["pid"]), int(inst["port"])))
    return found


def lsq_runtime_pid(folder: Path) -> int:
    data = json.loads((folder / ".lsq" / "runtime.json").read_text())
    return int(data["pid"])


def lsq_parts(runtime: int) -> dict[str, int]:
    """LSQ's own processes: the runtime, its guard, its gateway workers."""
    parts = {"lsq runtime": runtime}
    for kid in psutil.Process(runtime).children():
        line = " ".join(kid.cmdline())
        if "lsq.runtime._guard" in line or "lsq/runtime/_guard.py" in line:
            parts["lsq guard"] = kid.pid
        elif "lsq.gateway" in line or kid.name() == "lsq-gateway":
            parts[f"lsq gateway {len(parts) - 1}"] = kid.pid
    return parts


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of `pid` so far (not its children's), from
    `/proc/PID/task/*/schedstat`: to the nanosecond, where /proc/PID/stat
    counts clock ticks (10 ms), too coarse for one start."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as stat:
                total += int(stat.read().split()[0])
        except OSError:  # the thread ended meanwhile
            continue
    return total / 1e9


def lsq_down(folder: Path) -> None:
    subprocess.run(
        [str(LSQ), "down"], cwd=folder, check=True, capture_output=True, timeout=60
    )


_COMPILED = False


def compile_lsq() -> None:
    """Write the bytecode of `src/lsq` as an install does (pip compiles it).

    Where PYTHONDONTWRITEBYTECODE is set (as on the development machine), the
    editable install would otherwise compile every LSQ module from source at
    every `lsq` command, a cost no installed copy (and none of the peers,
    installed by pip) pays. The templates' files are left alone: they are
    copied into new apps.
    """
    global _COMPILED
    if _COMPILED:
        return
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", "compileall", "-q",
         "-x", "templates/builtin", str(ROOT / "src" / "lsq")],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )
    _COMPILED = True


_REPEAT_FOLDERS: dict[int, Path] = {}


def repeat_folder(count: int) -> Path:
    """The app folder `start_lsq_repeat` starts again and again: made, and
    started once untimed, on first use; removed at exit."""
    folder = _REPEAT_FOLDERS.get(count)
    if folder is None:
        folder = _REPEAT_FOLDERS[count] = workdir()
        atexit.register(cleanup, folder)
        script = write_service(folder)
        lsq_manifest(folder, script, count)
        stop_and_clean(_start_lsq_in(folder, "lsq"))
    return folder


def start_lsq(count: int) -> Running:
    """`lsq up -d` in a new app folder (a first start: nothing in `.lsq/`),
    timed until it returns; then every port is polled."""
    compile_lsq()
    folder = workdir()
    script = write_service(folder)
    lsq_manifest(folder, script, count)
    run = _start_lsq_in(folder, "lsq-first")
    run.folder = folder
    return run


def start_lsq_repeat(count: int) -> Running:
    """`lsq up -d` again in the app folder of the last run, as a developer
    starts an app day after day (`.lsq/` holds its manifest cache, ports and
    state); otherwise as `start_lsq`."""
    compile_lsq()
    return _start_lsq_in(repeat_folder(count), "lsq")


def _start_lsq_in(folder: Path, name: str) -> Running:
    t0 = time.monotonic()
    done = subprocess.run(
        [str(LSQ), "up", "-d"],
        check=False,
        cwd=folder,
        capture_output=True,
        timeout=START_TIMEOUT,
    )
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).decode(errors="replace")[-600:]
        raise RuntimeError(f"`lsq up -d` in {folder} exited {done.returncode}: {tail}")
    returned = time.monotonic() - t0
    instances = lsq_instances(folder)
    wait_healthy_sync([port for _, port in instances])
    confirmed = time.monotonic() - t0
    return Running(
        name,
        [pid for pid, _ in instances],
        lambda: lsq_down(folder),
        manager_pids=[lsq_runtime_pid(folder)],
        folder=None,
        extra={"seconds": returned, "confirmed": confirmed},
    )


# ----------------------------------------------------------------- honcho


def start_honcho(count: int) -> Running:
    peers = ensure_peers()
    folder = workdir()
    script = write_service(folder)
    ports = free_ports(count)
    lines = [
        f"s{i:02d}: PORT={port} exec {SERVICE_PYTHON} {script}"
        for i, port in enumerate(ports)
    ]
    (folder / "Procfile").write_text("\n".join(lines) + "\n")
    argv = [str(peers / "bin" / "honcho"), "start", "-f", "Procfile"]
    return start_manager("honcho", argv, folder, script, ports)


Stop = Callable[[subprocess.Popen[bytes], list[int]], None]


def _sigterm(proc: subprocess.Popen[bytes], pids: list[int]) -> None:
    proc.send_signal(signal.SIGTERM)


def start_manager(
    name: str, argv: list[str], folder: Path, script: Path, ports: list[int],
    stop: Stop = _sigterm,
) -> Running:
    """Start a peer's manager (`argv`, in `folder`), timed until the poller
    sees all `ports` answer; `stop(manager, service_pids)` stops it."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_healthy_sync(ports)
    seconds = time.monotonic() - t0
    pids = service_children(proc.pid, script)
    _POPENS[proc.pid] = proc
    return Running(name, pids, lambda: stop(proc, pids), [proc.pid], {"seconds": seconds}, folder)


_POPENS: dict[int, subprocess.Popen[bytes]] = {}


def reap(run: Running) -> None:
    """Collect the exit status of a manager this script started."""
    for pid in run.manager_pids:
        proc = _POPENS.pop(pid, None)
        if proc is not None:
            proc.wait(timeout=STOP_TIMEOUT)


# ----------------------------------------------------------------- circus


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines))
    return path


def circus_ini(folder: Path, script: Path, ports: list[int]) -> Path:
    endpoint = f"ipc://{folder}/ctl.sock"
    lines = [
        "[circus]",
        f"endpoint = {endpoint}",
        f"pubsub_endpoint = ipc://{folder}/pub.sock",
        "statsd = False",
        "",
    ]
    for i, port in enumerate(ports):
        lines += [
            f"[watcher:s{i:02d}]",
            f"cmd = {SERVICE_PYTHON} {script}",
            "numprocesses = 1",
            "copy_env = True",
            "",
            f"[env:s{i:02d}]",
            f"PORT = {port}",
            "",
        ]
    return write_lines(folder / "circus.ini", lines)


def start_circus(count: int, *, stop_with: str = "circusctl") -> Running:
    peers = ensure_peers()
    folder = workdir()
    script = write_service(folder)
    ports = free_ports(count)
    ini = circus_ini(folder, script, ports)
    ctl = [str(peers / "bin" / "circusctl"), "--endpoint", f"ipc://{folder}/ctl.sock"]

    def stop(proc: subprocess.Popen[bytes], pids: list[int]) -> None:
        if stop_with == "circusctl":
            subprocess.run(ctl + ["quit"], check=True, capture_output=True, timeout=60)
        else:
            proc.send_signal(signal.SIGTERM)

    argv = [str(peers / "bin" / "circusd"), str(ini)]
    return start_manager("circus", argv, folder, script, ports, stop)


# ------------------------------------------------------------ supervisord


def supervisord_conf(folder: Path, script: Path, ports: list[int]) -> Path:
    """One program per service; each program's output goes to its own log
    file under `folder`, supervisord's default handling, as LSQ keeps a log
    per service."""
    lines = [
        "[supervisord]",
        "nodaemon = true",
        f"logfile = {folder}/supervisord.log",
        f"pidfile = {folder}/supervisord.pid",
        f"childlogdir = {folder}",
        "",
        "[unix_http_server]",
        f"file = {folder}/supervisor.sock",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl = unix://{folder}/supervisor.sock",
        "",
    ]
    for i, port in enumerate(ports):
        lines += [
            f"[program:s{i:02d}]",
            f"command = {SERVICE_PYTHON} {script}",
            f'environment = PORT="{port}"',
            f"directory = {folder}",
            "",
        ]
    return write_lines(folder / "supervisord.conf", lines)


def start_supervisord(count: int, *, quick_stop: bool = False) -> Running:
    """supervisord on 50 programs. Its own stop takes a turn of its main loop
    per program (15-25 s for 50 here); with `quick_stop`, for benchmarks
    that do not time the stop, the services are also sent SIGTERM directly."""
    peers = ensure_peers()
    folder = workdir()
    script = write_service(folder)
    ports = free_ports(count)
    conf = supervisord_conf(folder, script, ports)

    def stop(proc: subprocess.Popen[bytes], pids: list[int]) -> None:
        proc.send_signal(signal.SIGTERM)
        if quick_stop:
            terminate_all(pids)

    argv = [str(peers / "bin" / "supervisord"), "-c", str(conf)]
    return start_manager("supervisord", argv, folder, script, ports, stop)


# ------------------------------------------------------------------- bare

# One loop for the bare launcher's whole life, so that asyncio reaps its
# children from the loop that spawned them.
_LOOP = asyncio.new_event_loop()


async def _bare(
    script: Path, ports: list[int]
) -> tuple[float, list[asyncio.subprocess.Process]]:
    t0 = time.monotonic()
    procs = []
    for port in ports:
        env = dict(os.environ, PORT=str(port))
        procs.append(
            await asyncio.create_subprocess_exec(
                SERVICE_PYTHON,
                str(script),
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        )
    await _poll.wait_healthy(ports, START_TIMEOUT)
    return time.monotonic() - t0, procs


async def _bare_stop(procs: list[asyncio.subprocess.Process]) -> None:
    for proc in procs:
        proc.terminate()
    await asyncio.gather(*(proc.wait() for proc in procs))


def start_bare(count: int) -> Running:
    """The floor: spawn all with asyncio, poll each every 20 ms."""
    folder = workdir()
    script = write_service(folder)
    ports = free_ports(count)
    seconds, procs = _LOOP.run_until_complete(_bare(script, ports))

    def stop() -> None:
        _LOOP.run_until_complete(_bare_stop(procs))

    pids = [p.pid for p in procs]
    return Running("bare", pids, stop, [], {"seconds": seconds}, folder)


BARE_LAUNCHER = Path(__file__).resolve().parent / "bare_launcher.py"


def start_bare_program(count: int) -> Running:
    """The floor as a program (`bare_launcher.py`, same spawning and polling
    as `start_bare`), timed from its start, as LSQ, honcho and circus are,
    until it says all are up: the in-process `bare` pays no interpreter
    start and no asyncio import, which any launcher someone runs does."""
    folder = workdir()
    script = write_service(folder)
    ports = free_ports(count)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [SERVICE_PYTHON, str(BARE_LAUNCHER), SERVICE_PYTHON, str(script), *map(str, ports)],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert proc.stdout is not None
    said = proc.stdout.readline()
    seconds = time.monotonic() - t0
    if said != b"up\n":
        proc.kill()
        proc.wait()
        raise RuntimeError(f"bare_launcher.py exited {proc.returncode} before all were up")

    def stop() -> None:
        proc.send_signal(signal.SIGTERM)
        proc.stdout.close()  # type: ignore[union-attr]

    pids = service_children(proc.pid, script)
    _POPENS[proc.pid] = proc
    return Running("bare-program", pids, stop, [proc.pid], {"seconds": seconds}, folder)


def stop_and_clean(run: Running) -> None:
    """Stop a candidate outside any timing and remove its folder."""
    procs = handles_alive(run.pids)
    run.stop()
    wait_gone(procs)
    reap(run)
    if run.folder is not None:
        cleanup(run.folder)


def handles_alive(pids: list[int]) -> list[psutil.Process]:
    found = []
    for pid in pids:
        try:
            found.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    return found


def cleanup(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
