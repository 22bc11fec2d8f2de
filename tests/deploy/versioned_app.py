"""A tiny HTTP service for the release tests.

Answers `/` with its VERSION, `/slow` after 2 s, `/health` with 200 unless
HEALTHY=0. With ERROR_EVERY=N every N-th request to `/` or `/slow` answers 500.
"""

import itertools
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("VERSION", "?")
HEALTHY = os.environ.get("HEALTHY", "1") == "1"
ERROR_EVERY = int(os.environ.get("ERROR_EVERY", "0"))
_count = itertools.count(1)
_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(200 if HEALTHY else 503, b"ok" if HEALTHY else b"not ready")
            return
        with _lock:
            n = next(_count)
        if self.path == "/slow":
            time.sleep(2.0)
        if ERROR_EVERY and n % ERROR_EVERY == 0:
            self._answer(500, b"boom " + VERSION.encode())
            return
        self._answer(200, VERSION.encode())

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
