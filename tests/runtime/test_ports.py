"""Ports: duplicates refused before anything starts, and a port taken by
someone else shown as a failure, never as running (B16, B17)."""

from __future__ import annotations

import socket

import psutil
from rthelpers import PY, App, free_port, port_free

SLEEPER = f"[{PY}, -c, 'import time; time.sleep(300)']"


def _lsq_children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def test_two_services_on_one_fixed_port_are_refused_before_anything_starts(
    app: App,
) -> None:
    # B16
    port = free_port()
    app.manifest(f"""
        services:
          web:
            command: {SLEEPER}
            port: {port}
          api:
            command: [{PY}, -c, "open('started', 'w')"]
            port: {port}
    """)
    before = _lsq_children()
    for args in (("validate",), ("up",), ("up", "-d")):
        result = app.lsq(*args, timeout=20)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        message = result.stderr
        assert f"port {port} is also used by" in message
        assert '"web"' in message and "services.api.port" in message
        assert "Traceback" not in message
    assert _lsq_children() == before
    assert not (app.root / "started").exists()
    assert not (app.state_dir() / "runtime.json").exists()
    assert port_free(port)


def test_replicas_of_a_fixed_port_service_get_private_ports_or_are_refused(
    app: App,
) -> None:
    # B16, second half: either refused before start, explaining how replicas
    # get ports, or (with the gateway in front) the fixed port is the
    # service's address and each replica listens on a private port.
    port = free_port()
    app.manifest(f"""
        services:
          web:
            command: {SLEEPER}
            port: {port}
            replicas: 2
    """)
    check = app.lsq("validate")
    if check.returncode != 0:
        assert check.returncode == 2
        assert "replicas" in check.stderr and str(port) in check.stderr
        assert app.lsq("up").returncode == 2
        return
    result = app.lsq("up", "-d", "--timeout", "20")
    app.track_runtime()
    assert result.returncode == 0, result.stdout + result.stderr
    web = app.service("web")
    assert web["address"] == f"http://127.0.0.1:{port}"
    ports = [i["port"] for i in web["instances"]]  # type: ignore[attr-defined]
    assert len(set(ports)) == 2 and port not in ports


PORT_USER = """
import os, socket, sys, time
port = int(os.environ["PORT"])
sock = socket.socket()
try:
    sock.bind(("127.0.0.1", port))
except OSError as exc:
    print(f"web: cannot listen on port {port}: {exc.strerror}", file=sys.stderr, flush=True)
    sys.exit(1)
sock.listen()
time.sleep(300)
"""


def test_a_service_whose_port_is_taken_is_never_shown_running(app: App) -> None:
    # B17
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    app.write("web.py", PORT_USER)
    app.manifest(f"""
        services:
          web:
            command: [{PY}, web.py]
            port: {port}
            health: {{tcp: true}}
            restart: {{max_restarts: 1, backoff: 0.2s}}
    """)
    try:
        result = app.lsq("up", "-d", "--timeout", "20")
        app.track_runtime()
        web = app.service("web")
    finally:
        blocker.close()

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"port {port}" in result.stderr and "in use" in result.stderr
    assert web["state"] == "failed" and web["health"] != "healthy"
    reason = web["instances"][0]["reason"]  # type: ignore[index]
    assert f"port {port} is in use" in reason
    assert "running" not in result.stdout.split("start-up failed")[0].replace(
        "not running", ""
    )


def test_private_ports_sit_below_the_range_outgoing_connections_use() -> None:
    # A replica's port chosen among the ephemeral ports could be taken by a
    # health probe's or the gateway's outgoing connection before the replica
    # binds it; the start would then fail with "port in use".
    from lsq.runtime._ports import REPLICA_RANGE, STABLE_RANGE
    from lsq.runtime._supervisor import Addresses

    from pathlib import Path

    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    low, high = int(ephemeral[0]), int(ephemeral[1])
    assert STABLE_RANGE[1] < REPLICA_RANGE[0] and REPLICA_RANGE[1] < low
    addresses = Addresses({"web": 25000}, gateway=True)
    taken: set[int] = set()
    with socket.socket() as held:
        # The first port of the range that can be had (a port there may be
        # in use already, or in TIME_WAIT from an earlier test's replica).
        for held_port in range(REPLICA_RANGE[0], REPLICA_RANGE[0] + 100):
            try:
                held.bind(("127.0.0.1", held_port))
                break
            except OSError:
                continue
        else:
            raise AssertionError("no free port at the start of the replica range")
        for index in range(200):
            port = addresses.replica_port("web", index, taken)
            assert REPLICA_RANGE[0] <= port <= REPLICA_RANGE[1], port
            assert port not in taken and port != 25000 and port != held_port
            taken.add(port)
    assert high >= low


def test_a_taken_ingress_port_is_refused_before_anything_starts(app: App) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        app.manifest(f"""
            services:
              web:
                command: {SLEEPER}
            gateway:
              ingress_port: {port}
        """)
        before = _lsq_children()
        for args in (("up",), ("up", "-d")):
            result = app.lsq(*args, timeout=20)
            assert result.returncode == 1, (args, result.stdout, result.stderr)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and f"gateway.ingress_port {port} is in use" in lines[0]
            assert "leave ingress_port out" in lines[0] and "Traceback" not in result.stderr
        assert _lsq_children() == before
        assert not (app.root / ".lsq" / "runtime.json").exists()
