"""lsq.client against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lsq.client import (
    AsyncClient,
    Client,
    RetryPolicy,
    context,
    current_deadline,
    incoming,
    new_traceparent,
    service_url,
)
from lsq.errors import ServiceError

FAST = RetryPolicy(attempts=2, backoff_base=0.001, backoff_cap=0.005)


class Script:
    """A server that answers with the next status of a list and records requests."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.headers: dict[str, str] = {}
        self.seen: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def next(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else 200


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            script.seen.append({"method": self.command, "path": self.path,
                                "headers": dict(self.headers), "body": body})
            status = script.next()
            out = json.dumps({"n": len(script.seen)}).encode()
            self.send_response(status)
            for k, v in script.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", script
    finally:
        srv.shutdown()
        srv.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_service_url_reads_the_address_variable(monkeypatch: pytest.MonkeyPatch, server: Any) -> None:
    url, script = server
    monkeypatch.setenv("LSQ_USER_API_URL", url + "/")
    assert service_url("user-api") == url
    with Client("user-api", retry=FAST) as client:
        assert client.get("/x").status_code == 200
    assert script.seen[0]["path"] == "/x"


def test_unknown_service_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LSQ_BILLING_V2_URL", raising=False)
    with pytest.raises(ServiceError, match="LSQ_BILLING_V2_URL"):
        Client("billing.v2")


@pytest.mark.parametrize("status", [502, 503, 504])
def test_get_is_retried_after_a_gateway_error(server: Any, status: int) -> None:
    url, script = server
    script.statuses = [status, status]
    with Client(retry=FAST) as client:
        resp = client.get(url + "/a")
    assert resp.status_code == 200
    assert len(script.seen) == 3


def test_retries_stop_after_attempts(server: Any) -> None:
    url, script = server
    script.statuses = [503] * 10
    with Client(retry=FAST) as client:
        assert client.get(url).status_code == 503
    assert len(script.seen) == 3


@pytest.mark.parametrize("status", [500, 429, 404])
def test_other_statuses_are_not_retried(server: Any, status: int) -> None:
    url, script = server
    script.statuses = [status]
    with Client(retry=FAST) as client:
        assert client.get(url).status_code == status
    assert len(script.seen) == 1


def test_post_is_not_retried_without_an_idempotency_key(server: Any) -> None:
    url, script = server
    script.statuses = [503]
    with Client(retry=FAST) as client:
        assert client.post(url, json={"a": 1}).status_code == 503
    assert len(script.seen) == 1


def test_post_with_an_idempotency_key_is_retried_with_the_same_body(server: Any) -> None:
    url, script = server
    script.statuses = [503]
    with Client(retry=FAST) as client:
        resp = client.post(url, json={"a": 1}, headers={"Idempotency-Key": "k1"})
    assert resp.status_code == 200
    assert [json.loads(s["body"]) for s in script.seen] == [{"a": 1}, {"a": 1}]


def test_connection_refused_is_retried_then_raised() -> None:
    port = closed_port()
    policy = RetryPolicy(attempts=2, backoff_base=0.001, backoff_cap=0.002)
    with Client(retry=policy) as client:
        before = client.budget.try_spend  # the budget is spent once per retry
        spent: list[bool] = []
        client.budget.try_spend = lambda: spent.append(True) or before()  # type: ignore[method-assign]
        with pytest.raises(httpx.ConnectError):
            client.get(f"http://127.0.0.1:{port}/")
    assert len(spent) == 2


def test_retry_after_is_honoured(server: Any) -> None:
    url, script = server
    script.statuses = [503]
    script.headers = {"Retry-After": "1"}
    with Client(retry=FAST) as client:
        started = time.monotonic()
        assert client.get(url).status_code == 200
    assert time.monotonic() - started >= 0.95
    assert len(script.seen) == 2


def test_retry_after_longer_than_allowed_is_not_waited_for(server: Any) -> None:
    url, script = server
    script.statuses = [503]
    script.headers = {"Retry-After": "120"}
    with Client(retry=FAST) as client:
        assert client.get(url).status_code == 503
    assert len(script.seen) == 1


def test_the_budget_caps_retries(server: Any) -> None:
    url, script = server
    script.statuses = [503] * 100
    policy = RetryPolicy(attempts=3, backoff_base=0.001, backoff_cap=0.001,
                         budget_ratio=0.5, budget_per_s=0.0)
    with Client(retry=policy) as client:
        for _ in range(10):
            client.get(url)
    # 10 calls, at most half of them may be retried: 5 retries over the window.
    retries = len(script.seen) - 10
    assert 1 <= retries <= 5


def test_deadline_and_trace_come_from_the_context(server: Any) -> None:
    url, script = server
    parent = new_traceparent()
    deadline = time.time() + 7
    with incoming({"X-LSQ-Deadline": f"{deadline:.3f}", "traceparent": parent}):
        assert current_deadline() == pytest.approx(deadline, abs=0.01)
        with Client(retry=FAST, timeout=None) as client:
            client.get(url)
    sent = {k.lower(): v for k, v in script.seen[0]["headers"].items()}
    assert float(sent["x-lsq-deadline"]) == pytest.approx(deadline, abs=0.01)
    assert sent["traceparent"].split("-")[1] == parent.split("-")[1]
    assert sent["traceparent"] != parent  # a child span, same trace


def test_without_a_context_a_trace_is_started_and_the_timeout_sets_the_deadline(server: Any) -> None:
    url, script = server
    with Client(retry=FAST, timeout=5.0) as client:
        client.get(url)
        client.get(url)
    first, second = ({k.lower(): v for k, v in s["headers"].items()} for s in script.seen)
    assert first["traceparent"].split("-")[1] != second["traceparent"].split("-")[1]
    assert time.time() < float(first["x-lsq-deadline"]) <= time.time() + 5.0


def test_a_passed_deadline_makes_no_call(server: Any) -> None:
    url, script = server
    with context(deadline=time.time() - 1):
        with Client(retry=FAST) as client:
            with pytest.raises(httpx.TimeoutException, match="deadline passed"):
                client.get(url)
    assert script.seen == []


def test_the_inner_context_cannot_extend_the_outer_deadline() -> None:
    with context(timeout=1.0):
        outer = current_deadline()
        with context(timeout=60.0):
            assert current_deadline() == outer
        with context(timeout=0.1):
            assert current_deadline() < outer  # type: ignore[operator]


def test_async_client_retries_and_propagates(server: Any) -> None:
    url, script = server
    script.statuses = [502]
    parent = new_traceparent()

    async def main() -> int:
        with context(timeout=10, traceparent=parent):
            async with AsyncClient(retry=FAST) as client:
                resp = await client.get(url)
                return resp.status_code

    assert asyncio.run(main()) == 200
    assert len(script.seen) == 2
    for seen in script.seen:
        headers = {k.lower(): v for k, v in seen["headers"].items()}
        assert headers["traceparent"].split("-")[1] == parent.split("-")[1]
        assert "x-lsq-deadline" in headers


def test_async_post_without_key_is_not_retried(server: Any) -> None:
    url, script = server
    script.statuses = [503]

    async def main() -> int:
        async with AsyncClient(retry=FAST) as client:
            return (await client.post(url, content=b"x")).status_code

    assert asyncio.run(main()) == 503
    assert len(script.seen) == 1
