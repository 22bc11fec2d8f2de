"""The service's own tests: run them with `.venv/bin/python -m pytest`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from app.main import app
from fastapi.testclient import TestClient


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def test_health(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"status": "ok"}
    assert client.get("/health/ready").status_code == 200


def test_items_round_trip(client: TestClient) -> None:
    created = client.post("/items", json={"name": "first"})
    assert created.status_code == 201
    item_id = created.json()["id"]
    assert client.get(f"/items/{item_id}").json() == {"id": item_id, "name": "first"}
    assert item_id in [i["id"] for i in client.get("/items").json()]
    assert client.delete(f"/items/{item_id}").status_code == 204
    assert client.get(f"/items/{item_id}").status_code == 404


def test_bad_item_is_refused(client: TestClient) -> None:
    assert client.post("/items", json={"name": ""}).status_code == 422


def test_metrics_count_requests(client: TestClient) -> None:
    client.get("/items")
    text = client.get("/metrics").text
    assert 'http_requests_total{method="GET",route="/items",status="200"}' in text
    assert "http_request_duration_seconds_bucket" in text


def test_log_line_carries_incoming_trace_id(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    client.get("/items", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    requests = [e for e in events if e["msg"] == "request" and e["path"] == "/items"]
    assert requests and requests[-1]["trace_id"] == trace_id


def test_openapi_describes_items(client: TestClient) -> None:
    assert "/items" in client.get("/openapi.json").json()["paths"]
