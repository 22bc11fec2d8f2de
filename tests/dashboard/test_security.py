"""Who may use the dashboard: the token holder, from the app's own origin, by POST for changes."""

from __future__ import annotations

import gzip
import json

import pytest
from dashboard_helpers import Running

READS = [
    "/ui/status",
    "/ui/logs",
    "/ui/traffic",
    "/ui/topology",
    "/ui/traces",
    "/metrics",
]


@pytest.mark.parametrize("path", ["/", *READS, "/v1/status"])
def test_foreign_host_is_refused(demo: Running, path: str) -> None:
    status, _, body = demo.request(
        "GET", path, headers={"Host": f"evil.example:{demo.port}"}
    )
    assert status == 421, body


@pytest.mark.parametrize("path", [*READS, "/ui/static/app.js"])
def test_foreign_origin_is_refused(demo: Running, path: str) -> None:
    status, _, body = demo.request(
        "GET", path, headers={"Origin": "http://evil.example"}
    )
    assert status == 403, body


def test_foreign_origin_cannot_restart(demo: Running) -> None:
    before = demo.service("back")["instances"][0]["restarts"]
    status, _, _ = demo.request(
        "POST",
        "/v1/services/back/restart",
        headers={"Origin": f"http://127.0.0.1:{demo.port + 1}"},
    )
    assert status == 403
    assert demo.service("back")["instances"][0]["restarts"] == before


@pytest.mark.parametrize("path", READS)
def test_missing_token_is_refused(demo: Running, path: str) -> None:
    status, _, body = demo.request("GET", path, auth=False)
    assert status == 401, body


def test_wrong_cookie_is_refused(demo: Running) -> None:
    cookie = f"lsq_token_{demo.port}=not-the-token"
    status, _, _ = demo.request(
        "GET", "/ui/status", auth=False, headers={"Cookie": cookie}
    )
    assert status == 401


def test_page_without_token_asks_for_it(demo: Running) -> None:
    status, _, body = demo.request("GET", "/", auth=False)
    assert status == 401
    assert b"lsq dashboard" in body
    status, _, _ = demo.request("GET", "/?token=wrong", auth=False)
    assert status == 401


def test_token_in_url_becomes_a_strict_httponly_cookie(demo: Running) -> None:
    status, headers, _ = demo.request("GET", f"/?token={demo.token}", auth=False)
    assert status == 302
    assert headers["location"] == "/"
    cookie = headers["set-cookie"]
    assert cookie.startswith(f"lsq_token_{demo.port}={demo.token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    status, headers, body = demo.request(
        "GET", "/", auth=False, headers={"Cookie": cookie.split(";")[0]}
    )
    assert status == 200 and b"app.js" in body
    assert "script-src 'self'" in headers["content-security-policy"]


@pytest.mark.parametrize("action", ["start", "stop", "restart", "scale"])
def test_state_change_by_get_is_refused(demo: Running, action: str) -> None:
    status, _, body = demo.request("GET", f"/v1/services/back/{action}")
    assert status == 405, body
    assert demo.service("back")["state"] == "running"


def test_unknown_static_asset_is_not_served(demo: Running) -> None:
    status, _, _ = demo.request("GET", "/ui/static/..%2Fdashboard.py")
    assert status == 404


def test_otlp_needs_the_secret_not_the_token(demo: Running) -> None:
    body = json.dumps({"resourceSpans": []}).encode()
    headers = {"Content-Type": "application/json"}
    status, _, _ = demo.request(
        "POST", "/otlp/wrong-secret/v1/traces", body=body, headers=headers, auth=False
    )
    assert status == 404
    secret = demo.status()["otlp_endpoint"].rsplit("/", 1)[1]
    status, _, _ = demo.request(
        "POST", f"/otlp/{secret}/v1/traces", body=body, headers=headers, auth=False
    )
    assert status == 200
    status, _, _ = demo.request(
        "POST", f"/otlp/{secret}/v1/traces", body=b"{nope", headers=headers, auth=False
    )
    assert status == 400


def test_otlp_accepts_gzip_and_refuses_unknown_encodings(demo: Running) -> None:
    trace = "5b8efff798038103d269b633813fc60c"
    spans = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace,
                                "spanId": "eee19b7ec3c1b174",
                                "name": "zipped",
                                "startTimeUnixNano": "1",
                                "endTimeUnixNano": "2",
                            }
                        ]
                    }
                ]
            }
        ]
    }
    secret = demo.status()["otlp_endpoint"].rsplit("/", 1)[1]
    path = f"/otlp/{secret}/v1/traces"
    zipped = gzip.compress(json.dumps(spans).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    status, _, _ = demo.request("POST", path, body=zipped, headers=headers, auth=False)
    assert status == 200
    assert demo.get(f"/ui/traces/{trace}")["spans"][0]["name"] == "zipped"
    headers["Content-Encoding"] = "br"
    status, _, _ = demo.request("POST", path, body=zipped, headers=headers, auth=False)
    assert status == 415
