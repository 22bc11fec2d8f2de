"""The Gateway object: table updates, ingress routing, workers, stats, log."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from gateway_helpers import Backend, Client, async_test, get, running_gateway, table

import lsq.gateway
from lsq.errors import GatewayError


def test_public_names_are_pinned() -> None:
    assert sorted(lsq.gateway.__all__) == [
        "Backend",
        "Gateway",
        "PrefixRoute",
        "RoutingTable",
        "ServiceEntry",
        "effective_policy",
        "table_policy",
    ]


def test_routing_table_round_trips_through_json() -> None:
    raw = table(
        {
            "api": {
                "port": 7001,
                "backends": [
                    {
                        "id": "api-0",
                        "host": "127.0.0.1",
                        "port": 9,
                        "weight": 50,
                        "pid": 4242,
                    }
                ],
                "routes": [{"prefix": "/api", "strip": False}],
                "faults": [{"id": "f1", "kind": "abort", "params": {"status": 503}}],
                "policy": {"timeout": 5.0, "retries": {"attempts": 1}},
            }
        },
        ingress=8080,
    )
    parsed = lsq.gateway.RoutingTable.from_json(json.loads(json.dumps(raw)))
    assert parsed.to_json() == raw | {"services": {"api": raw["services"]["api"]}}
    assert parsed.services["api"].backends[0].weight == 50


@async_test()
async def test_ingress_routes_by_host_and_by_prefix_with_strip_or_keep() -> None:
    api, web = await Backend().start(), await Backend().start()
    tbl = table(
        {
            "api": {
                "backends": [api.entry("api-0")],
                "routes": [{"prefix": "/api", "strip": True}],
            },
            "web": {
                "backends": [web.entry("web-0")],
                "routes": [{"prefix": "/web", "strip": False}],
            },
        },
        ingress=0,
    )
    async with running_gateway(tbl) as gw:
        port = gw.ingress_port
        assert port
        by_host = await get(port, "/x", headers={"Host": f"web.localhost:{port}"})
        stripped = await get(port, "/api/users?id=1")
        root = await get(port, "/api")
        kept = await get(port, "/web/page")
        not_prefix = await get(port, "/apix")
    assert by_host.json()["path"] == "/x" and web.seen[0].path == "/x"
    assert stripped.json()["path"] == "/users?id=1"
    assert root.json()["path"] == "/"
    assert kept.json()["path"] == "/web/page"
    assert not_prefix.status == 404
    assert not_prefix.json()["error"] == "no route"


@async_test()
async def test_services_listeners_open_and_close_with_the_table() -> None:
    backend = await Backend().start()
    async with running_gateway(table({})) as gw:
        gw.update(table({"api": {"backends": [backend.entry("api-0")]}}))
        await gw.wait_applied()
        port = gw.ports["api"]
        assert (await get(port)).status == 200
        gw.update(table({}))
        await gw.wait_applied()
        with pytest.raises(ConnectionRefusedError):
            await get(port)


@async_test()
async def test_a_taken_port_is_refused_with_a_clear_error() -> None:
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    taken = blocker.sockets[0].getsockname()[1]
    try:
        async with running_gateway(table({})) as gw:
            with pytest.raises(GatewayError, match=f"port {taken} for service 'api'"):
                gw.update(table({"api": {"port": taken}}))
    finally:
        blocker.close()


async def _traffic(port: int, stop: asyncio.Event, statuses: list[int]) -> None:
    client = await Client.connect(port)
    try:
        for _ in range(2000):
            if stop.is_set():
                break
            statuses.append((await client.request(path="/t")).status)
            await asyncio.sleep(0.005)  # steady, so traffic spans every phase
    finally:
        await client.close()


@async_test(timeout=40)
async def test_replicas_join_and_leave_under_traffic_without_failures() -> None:
    a, b = await Backend().start(), await Backend().start()
    async with running_gateway(table({"api": {"backends": [a.entry("api-0")]}})) as gw:
        stop = asyncio.Event()
        statuses: list[int] = []
        clients = [
            asyncio.create_task(_traffic(gw.ports["api"], stop, statuses))
            for _ in range(4)
        ]
        await asyncio.sleep(0.5)
        gw.update(table({"api": {"backends": [a.entry("api-0"), b.entry("api-1")]}}))
        await asyncio.sleep(0.5)
        gw.update(table({"api": {"backends": [b.entry("api-1")]}}))  # a leaves
        await gw.wait_applied()
        await asyncio.sleep(0.3)  # drain moment, then really stop it
        served_by_a = len(a.seen)
        await a.stop()
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*clients)
    assert len(statuses) > 50, len(statuses)
    assert len(b.seen) > 0, (len(statuses), served_by_a)
    assert set(statuses) == {200}
    assert len(b.seen) > 0
    assert len(a.seen) == served_by_a


@async_test()
async def test_two_workers_serve_and_stats_add_up(
    tmp_path_factory: object = None,
) -> None:
    backend = await Backend().start()
    tbl = table({"api": {"backends": [backend.entry("api-0")]}})
    async with running_gateway(tbl, workers=2) as gw:
        for i in range(20):
            assert (await get(gw.ports["api"], f"/{i}")).status == 200
        stats = await gw.stats()
    assert stats["services"]["api"]["requests"] == 20
    assert stats["replicas"]["api-0"]["requests"] == 20
    assert stats["services"]["api"]["latency_ms"]["p99"] is not None


@async_test()
async def test_access_log_has_one_json_line_per_request(tmp_path: Path) -> None:
    backend = await Backend().start()
    tbl = table({"api": {"backends": [backend.entry("api-0")]}})
    async with running_gateway(tbl, log_dir=tmp_path) as gw:
        for i in range(3):
            await get(gw.ports["api"], f"/a{i}")
    rows = [
        json.loads(line) for line in (tmp_path / "access.log").read_text().splitlines()
    ]
    assert [r["path"] for r in rows] == ["/a0", "/a1", "/a2"]
    assert set(rows[0]) == {
        "ts",
        "service",
        "replica",
        "method",
        "path",
        "status",
        "bytes",
        "duration_ms",
    }
    assert rows[0]["replica"] == "api-0" and rows[0]["status"] == 200


@async_test()
async def test_external_service_forwards_to_its_url_with_its_host() -> None:
    backend = await Backend().start()
    url = f"http://127.0.0.1:{backend.port}/base"
    async with running_gateway(table({"pay": {"external": url}})) as gw:
        response = await get(
            gw.ports["pay"], "/charge", headers={"Host": "localhost:1"}
        )
    assert response.status == 200
    assert backend.seen[0].path == "/base/charge"
    assert backend.seen[0].headers["host"] == f"127.0.0.1:{backend.port}"
    assert backend.seen[0].headers["x-forwarded-host"] == "localhost:1"


_ORPHAN = """
import asyncio, sys
from lsq.gateway import Gateway
from lsq.manifest._schema import Gateway as Settings
async def main():
    gw = Gateway(Settings(workers=2))
    await gw.start()
    print(" ".join(str(p) for p in gw.worker_pids), flush=True)
    await asyncio.sleep(30)
asyncio.run(main())
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@async_test()
async def test_workers_die_when_the_parent_is_killed() -> None:
    import signal
    import sys

    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _ORPHAN, stdout=asyncio.subprocess.PIPE
    )
    line = await asyncio.wait_for(parent.stdout.readline(), 15)  # type: ignore[union-attr]
    workers = [int(p) for p in line.split()]
    assert len(workers) == 2 and all(_alive(p) for p in workers)
    parent.send_signal(signal.SIGKILL)
    await parent.wait()
    for _ in range(50):
        if not any(_alive(p) for p in workers):
            break
        await asyncio.sleep(0.1)
    assert not any(_alive(p) for p in workers)


@async_test(timeout=40)
async def test_a_crashed_worker_is_replaced_and_stats_survive() -> None:
    import os
    import signal

    backend = await Backend().start()
    tbl = table({"api": {"backends": [backend.entry("api-0")]}})
    async with running_gateway(tbl, workers=2) as gw:
        first = gw.worker_pids
        os.kill(first[0], signal.SIGKILL)
        stats = await gw.stats()  # must not fail while a worker is down
        for _ in range(100):
            if len(gw.worker_pids) == 2 and first[0] not in gw.worker_pids:
                break
            await asyncio.sleep(0.1)
        after = gw.worker_pids
        await gw.wait_applied()
        statuses = [(await get(gw.ports["api"], f"/{i}")).status for i in range(10)]
    assert "services" in stats
    assert len(after) == 2 and first[0] not in after and first[1] in after
    assert statuses == [200] * 10


@async_test(timeout=60)
async def test_a_table_of_300_services_is_applied_without_a_worker_restart() -> None:
    # The table goes to each worker as one line; 150 services with their
    # policies passed asyncio's 64 KiB line limit and the workers died
    # at every table, while start-up still reported success.
    backend = await Backend().start()
    policy = {"timeout": 5.0, "retries": {"attempts": 2}, "routes": []}
    services = {
        f"service-{i:03d}-with-a-long-name": {
            "backends": [backend.entry(f"service-{i:03d}-0")], "policy": policy,
        }
        for i in range(300)
    }
    tbl = table(services)
    assert len(json.dumps(tbl)) > 64 * 1024
    async with running_gateway(tbl) as gw:
        pids = gw.worker_pids
        last = gw.ports["service-299-with-a-long-name"]
        assert (await get(last, "/x")).status == 200
        gw.update(tbl)
        await gw.wait_applied()
        assert (await get(gw.ports["service-000-with-a-long-name"], "/y")).status == 200
        assert gw.worker_pids == pids


def test_a_reserved_port_cannot_be_taken_while_no_worker_listens() -> None:
    # At start-up and while a dead worker is replaced, only the gateway's
    # reservation holds a service's port; another program's SO_REUSEADDR
    # socket used to bind and listen there and take the service's clients.
    import socket

    from lsq.gateway._gateway import _reserve

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    reservation = _reserve("web", port)
    try:
        with socket.socket() as thief:
            thief.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with pytest.raises(OSError):
                thief.bind(("127.0.0.1", port))
        with socket.socket() as worker:  # what a worker does, in the same group
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            worker.bind(("127.0.0.1", port))
            worker.listen()
    finally:
        reservation.close()
