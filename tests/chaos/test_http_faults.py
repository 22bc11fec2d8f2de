"""HTTP-level faults, observed through the real gateway at the service's address.

The gateway applies the faults it finds in the routing table (contract in
docs/chaos.md); these tests fail until the gateway side is in place.
"""

from __future__ import annotations

import time

import httpx
from chelpers import App


def timed(client: httpx.Client, url: str) -> tuple[int, float]:
    started = time.monotonic()
    status = client.get(url).status_code
    return status, time.monotonic() - started


def test_latency_slows_requests_and_removal_applies_on_an_open_connection(clean: App) -> None:
    url = clean.address("web") + "/hello"
    with httpx.Client(timeout=10) as client:
        base = min(timed(client, url)[1] for _ in range(3))
        assert clean.lsq("chaos", "add", "latency", "web", "--ms", "300").returncode == 0
        slow = [timed(client, url) for _ in range(3)]
        assert all(status == 200 and t >= 0.3 for status, t in slow), slow
        assert clean.lsq("chaos", "rm", "--all").returncode == 0
        status, fast = timed(client, url)  # same keep-alive connection
    assert status == 200
    assert fast < 0.3 + base


def test_abort_answers_with_the_status_only_on_the_prefix(clean: App) -> None:
    base = clean.address("web")
    result = clean.lsq("chaos", "add", "abort", "web", "--status", "503", "--prefix", "/x")
    assert result.returncode == 0, result.stderr
    assert httpx.get(base + "/x/1", timeout=5).status_code == 503
    assert httpx.get(base + "/y", timeout=5).status_code == 200


def test_header_match_limits_the_fault(clean: App) -> None:
    base = clean.address("web")
    clean.lsq("chaos", "add", "abort", "web", "--status", "418", "--header", "x-chaos=1")
    assert httpx.get(base + "/", headers={"x-chaos": "1"}, timeout=5).status_code == 418
    assert httpx.get(base + "/", timeout=5).status_code == 200


def test_partition_cuts_only_calls_from_the_source(clean: App) -> None:
    result = clean.lsq("chaos", "add", "partition", "web", "--from", "caller")
    assert result.returncode == 0, result.stderr
    called = httpx.get(clean.address("caller") + "/call", timeout=10).json()
    assert called["web"] != 200
    assert httpx.get(clean.address("web") + "/", timeout=5).status_code == 200


def test_truncate_cuts_the_body(clean: App) -> None:
    clean.lsq("chaos", "add", "truncate", "web", "--after-bytes", "100", "--prefix", "/big")
    try:
        body = httpx.get(clean.address("web") + "/big", timeout=5).content
    except httpx.HTTPError:
        return  # the connection was cut mid-body: that is the fault
    assert len(body) < 65536
