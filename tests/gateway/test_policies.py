"""Resilience policies with real failing replicas: retries, the budget,
timeouts, the deadline header, outlier ejection, the breaker, weights."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from typing import Any

from gateway_helpers import (
    Backend,
    Client,
    Seen,
    async_test,
    echo,
    get,
    running_gateway,
    table,
)


def _status(code: int) -> Any:
    async def handler(seen: Seen, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 %d X\r\nContent-Length: 4\r\n\r\nfail" % code)

    return handler


async def _silent(seen: Seen, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(10)


def _svc(backends: list[dict[str, Any]], **policy: Any) -> dict[str, Any]:
    return table({"web": {"backends": backends, "policy": policy}})


_NO_EJECT = {"consecutive_failures": 1000}


def _echo_after(seconds: float) -> Any:
    async def handler(seen: Seen, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(seconds)
        await echo(seen, writer)

    return handler


@async_test(timeout=40)
async def test_b42_failing_replica_is_ejected_and_the_healthy_one_keeps_serving() -> None:
    # The healthy replica answers 5 ms slower: the balancer (lower latency
    # wins) then keeps sending to the failing one until it is ejected,
    # rather than leaving it alone after one failure, as it did when the
    # first answers' timing happened to favour the healthy one.
    good = await Backend(_echo_after(0.005)).start()
    bad = await Backend(_status(500)).start()
    tbl = _svc([good.entry("web-1"), bad.entry("web-2")])
    async with running_gateway(tbl) as gw:
        client = await Client.connect(gw.ports["web"])
        statuses: list[int] = []
        # The balancer decides how soon the failing replica collects its five
        # failures; once it has them, it gets nothing more.
        while statuses.count(500) < 5 and len(statuses) < 200:
            statuses.append((await client.request(path=f"/{len(statuses)}")).status)
        after = [(await client.request(path=f"/after{i}")).status for i in range(20)]
        await client.close()
        stats = await gw.stats()
    assert statuses.count(500) == 5  # 5 in a row eject it; 500 is never retried
    assert after == [200] * 20
    replica = stats["replicas"]["web-2"]
    assert replica["ejected_until"] > time.time() and replica["ejections"] == 1
    assert stats["replicas"]["web-1"]["ejected_until"] is None
    assert stats["services"]["web"]["breaker"]["state"] == "closed"
    (event,) = [e for e in stats["events"] if e["kind"] == "ejected"]
    assert event["replica"] == "web-2" and event["service"] == "web"
    assert "error ratio 100%" in event["cause"] and "answered 500" in event["cause"]
    assert abs(event["ts"] - time.time()) < 30 and event["seq"] >= 1


@async_test()
async def test_503_is_retried_for_get_and_keyed_post_but_never_for_plain_post() -> None:
    good = await Backend().start()
    bad = await Backend(_status(503)).start()
    # A budget this test cannot exhaust: which requests are retried is the
    # point here (the budget has its own test). With the default one, about
    # one run in ten ran out before the last keyed POST and it got the 503.
    tbl = _svc([good.entry("web-1"), bad.entry("web-2")], outlier=_NO_EJECT,
               retries={"budget_per_s": 1000.0})
    payload = os.urandom(20_000)
    async with running_gateway(tbl) as gw:
        client = await Client.connect(gw.ports["web"])
        gets = [(await client.request(path="/g")).status for _ in range(12)]
        keyed = [
            (
                await client.request(
                    "POST", "/k", body=payload, headers={"Idempotency-Key": str(i)}
                )
            ).status
            for i in range(8)
        ]
        plain = [(await client.request("POST", "/p", body=payload)).status for _ in range(16)]
        await client.close()
        stats = await gw.stats()
    assert gets == [200] * 12 and keyed == [200] * 8
    assert 503 in plain and set(plain) <= {200, 503}
    plain_at_bad = [s for s in bad.seen if s.path == "/p"]
    assert len(plain_at_bad) == plain.count(503)  # each plain POST went out once
    digest = hashlib.sha256(payload).hexdigest()
    assert all(s.sha256 == digest for s in good.seen if s.method == "POST")
    assert stats["services"]["web"]["retries"] >= 1


@async_test()
async def test_retry_budget_caps_upstream_attempts_and_says_so() -> None:
    backends = [await Backend(_status(503)).start() for _ in range(3)]
    tbl = _svc(
        [b.entry(f"web-{i}") for i, b in enumerate(backends)],
        outlier=_NO_EJECT,
        breaker={"enabled": False},
        retries={"budget_ratio": 0.1, "budget_per_s": 0.0, "backoff_base": 0.001},
    )
    async with running_gateway(tbl) as gw:
        client = await Client.connect(gw.ports["web"])
        statuses = [(await client.request()).status for _ in range(100)]
        await client.close()
        stats = await gw.stats()
    attempts = sum(len(b.seen) for b in backends)
    assert statuses == [503] * 100
    assert 100 <= attempts <= 100 + 10 + 7  # 10% of requests, plus the initial bucket
    assert any(e["kind"] == "budget-exhausted" for e in stats["events"])


@async_test()
async def test_try_timeout_moves_a_get_to_another_replica() -> None:
    good = await Backend().start()
    slow = await Backend(_silent).start()
    tbl = _svc([slow.entry("web-1"), good.entry("web-2")], try_timeout=0.3, outlier=_NO_EJECT)
    async with running_gateway(tbl) as gw:
        started = time.monotonic()
        statuses = [(await get(gw.ports["web"])).status for _ in range(4)]
        took = time.monotonic() - started
    assert statuses == [200] * 4
    assert took < 4 * 2.0
    assert len(good.seen) == 4


@async_test()
async def test_deadline_is_sent_downstream_and_an_incoming_one_is_honoured() -> None:
    fast = await Backend().start()
    slow = await Backend(_silent).start()
    tbl = table(
        {
            "web": {"backends": [fast.entry("web-1")], "policy": {"timeout": 5.0}},
            "slow": {"backends": [slow.entry("slow-1")]},
        }
    )
    async with running_gateway(tbl) as gw:
        before = time.time()
        sent = (await get(gw.ports["web"])).json()["headers"]["x-lsq-deadline"]
        deadline = f"{time.time() + 0.5:.3f}"
        started = time.monotonic()
        late = await get(gw.ports["slow"], headers={"X-LSQ-Deadline": deadline})
        took = time.monotonic() - started
    assert before + 4.0 < float(sent) < time.time() + 5.5
    assert late.status == 504 and "deadline" in late.json()["cause"]
    assert 0.3 < took < 3.0
    assert float(slow.seen[0].headers["x-lsq-deadline"]) == float(deadline)


class _Toggle:
    def __init__(self) -> None:
        self.failing = True

    async def __call__(self, seen: Seen, writer: asyncio.StreamWriter) -> None:
        code = 503 if self.failing else 200
        writer.write(b"HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok" % code)


@async_test()
async def test_breaker_opens_when_every_replica_fails_and_a_probe_closes_it() -> None:
    toggle = _Toggle()
    backend = await Backend(toggle).start()
    tbl = _svc(
        [backend.entry("web-1")],
        outlier={"consecutive_failures": 3, "base_ejection": 0.5},
    )
    async with running_gateway(tbl) as gw:
        client = await Client.connect(gw.ports["web"])
        first = [(await client.request()).status for _ in range(3)]
        refused = await client.request()
        seen_while_open = len(backend.seen)
        toggle.failing = False
        await asyncio.sleep(0.7)
        probe = await client.request()
        after = await client.request()
        await client.close()
        stats = await gw.stats()
    assert first == [503] * 3
    assert refused.status == 503 and refused.json()["error"] == "circuit open"
    assert seen_while_open == 3
    assert probe.status == 200 and after.status == 200
    kinds = [e["kind"] for e in stats["events"]]
    assert kinds.index("breaker-open") < kinds.index("breaker-closed")
    assert stats["services"]["web"]["breaker"]["state"] == "closed"
    opened = next(e for e in stats["events"] if e["kind"] == "breaker-open")
    assert "every replica is failing" in opened["cause"] and "web-1" in opened["cause"]


@async_test()
async def test_weights_split_traffic_and_weight_zero_gets_none() -> None:
    backends = [await Backend().start() for _ in range(3)]
    entries = [b.entry(f"web-{i}") for i, b in enumerate(backends)]
    for entry, weight in zip(entries, (75, 25, 0), strict=True):
        entry["weight"] = weight
    async with running_gateway(_svc(entries)) as gw:
        client = await Client.connect(gw.ports["web"])
        for _ in range(400):
            assert (await client.request()).status == 200
        await client.close()
    counts = [len(b.seen) for b in backends]
    assert counts[2] == 0
    assert 0.15 <= counts[1] / 400 <= 0.35


@async_test()
async def test_policy_switch_for_the_benchmark_turns_the_deadline_off_and_on() -> None:
    backend = await Backend().start()
    async with running_gateway(table({"web": {"backends": [backend.entry("web-1")]}})) as gw:
        before = (await get(gw.ports["web"])).json()["headers"]
        await gw.set_policies(False)
        off = (await get(gw.ports["web"])).json()["headers"]
        await gw.set_policies(True)
        on = (await get(gw.ports["web"])).json()["headers"]
    assert "x-lsq-deadline" in before and "x-lsq-deadline" in on
    assert "x-lsq-deadline" not in off


@async_test(timeout=30)
async def test_a_routes_policy_applies_through_the_ingress_when_its_prefix_is_stripped() -> None:
    # `routes: [{prefix: /api, strip: true, policy: {timeout: 0.3s}}]`: the
    # route's policy is chosen by the path the client sent (/api/...), not
    # the stripped one the service gets (/...), which matched no route's
    # prefix and took the service's 5 s instead.
    slow = await Backend(_echo_after(1.0)).start()
    tbl = table(
        {
            "api": {
                "backends": [slow.entry("api-0")],
                "routes": [{"prefix": "/api", "strip": True}],
                "policy": {"timeout": 5.0, "retries": {"attempts": 1},
                           "routes": [{"prefix": "/api", "timeout": 0.3}]},
            },
        },
        ingress=0,
    )
    async with running_gateway(tbl) as gw:
        assert gw.ingress_port
        started = time.monotonic()
        through_ingress = await get(gw.ingress_port, "/api/slow")
        took = time.monotonic() - started
        # By Host, nothing is stripped and /slow is under no route's prefix.
        by_host = await get(gw.ingress_port, "/slow",
                            headers={"Host": f"api.localhost:{gw.ingress_port}"})
        direct = await get(gw.ports["api"], "/api/slow")
    assert through_ingress.status == 504 and took < 0.9, (through_ingress.status, took)
    assert slow.seen[0].path == "/slow"  # the service still got the stripped path
    assert by_host.status == 200  # the service's 5 s
    assert direct.status == 504  # on its own address, /api/slow is under the route
