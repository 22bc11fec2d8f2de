"""A two-service app for the dashboard tests: `front` calls `back`.

Both are small stdlib HTTP servers; `GET /crash` makes one exit with code 3
(`back` then waits 3 s or more before its restart, so a crash loop shows). Each request to `front /order?tag=X`
starts a trace, calls `back /work` with a `traceparent` header, and both
services print one JSON log line carrying the trace id and export one span as
OTLP/JSON over urllib. The OTLP endpoint is `OTEL_EXPORTER_OTLP_ENDPOINT`
when LSQ sets it; otherwise the test writes it to `otlp.txt` in the app
folder once the runtime is up (the services read it per request).
"""

from __future__ import annotations

MANIFEST = """\
name: demo
services:
  back:
    command: [{py}, -u, service.py, back]
    health:
      http: /health
      interval: 0.5s
    restart:
      policy: always
      backoff: 3s
  front:
    command: [{py}, -u, service.py, front]
    depends_on:
      back: healthy
    health:
      http: /health
      interval: 0.5s
    restart: always
"""

SERVICE = r"""
import json, os, secrets, sys, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

NAME = sys.argv[1]
HERE = Path(__file__).resolve().parent


def endpoint():
    env = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if env:
        return env
    try:
        return (HERE / "otlp.txt").read_text().strip()
    except OSError:
        return ""


def export(trace, span, parent, name, start, end, kind):
    url = endpoint()
    if not url:
        return
    body = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": NAME}}]},
        "scopeSpans": [{"scope": {"name": "demo"}, "spans": [{
            "traceId": trace, "spanId": span, "parentSpanId": parent, "name": name,
            "kind": kind, "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
            "attributes": [{"key": "http.route", "value": {"stringValue": name}}],
        }]}],
    }]}
    req = urllib.request.Request(url.rstrip("/") + "/v1/traces", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req, timeout=5).read()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            return self.reply(200, {"ok": True})
        if self.path == "/crash":
            print("crashing on request", flush=True)
            os._exit(3)
        start = time.time_ns()
        tag = self.path.partition("tag=")[2] or "-"
        parent = ""
        trace = secrets.token_hex(16)
        incoming = self.headers.get("traceparent", "")
        if incoming.count("-") == 3:
            _, trace, parent, _ = incoming.split("-")
        span = secrets.token_hex(8)
        if NAME == "front":
            url = os.environ["LSQ_BACK_URL"] + f"/work?tag={tag}"
            req = urllib.request.Request(url, headers={"traceparent": f"00-{trace}-{span}-01"})
            urllib.request.urlopen(req, timeout=10).read()
        print(json.dumps({"level": "info", "msg": f"{NAME} handled {tag}", "trace_id": trace,
                          "tag": tag}), flush=True)
        self.reply(200, {"service": NAME, "trace_id": trace})
        export(trace, span, parent, self.path.split("?")[0], start, time.time_ns(),
               2 if NAME == "back" else 2)


print(f"{NAME} listening on {os.environ['PORT']}", flush=True)
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""
