"""Who may use the control API: the token holder, through an expected Host/Origin.

The token is random, written by `lsq up` to `.lsq/token` with mode 0600, and
sent as `Authorization: Bearer <token>` (or, by the dashboard, as the
`lsq_token` cookie). Host must name the loopback address the API listens on,
so a DNS-rebinding page cannot reach it; a request carrying an Origin must come
from that same address, so no other site can make a browser send requests.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from lsq.control._http import Request


def new_token(path: Path) -> str:
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(token)
    os.chmod(path, 0o600)
    return token


def _cookie(header: str, name: str) -> str:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


class Guard:
    def __init__(self, token: str, port: int) -> None:
        self.token = token
        self.port = port
        self._hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        self._origins = {f"http://{h}" for h in self._hosts}

    def refuse(
        self, request: Request, *, need_token: bool = True, allow_query_token: bool = False
    ) -> tuple[int, str] | None:
        """None if allowed; else (status, reason). Host and Origin are always checked."""
        host = request.headers.get("host", "")
        if host not in self._hosts:
            return 421, f"unexpected Host {host!r}"
        origin = request.headers.get("origin")
        if origin is not None and origin not in self._origins:
            return 403, f"cross-origin request from {origin!r} refused"
        if need_token and not self.token_ok(request, allow_query_token=allow_query_token):
            return 401, "missing or wrong token; the CLI reads it from .lsq/token"
        return None

    def token_ok(self, request: Request, *, allow_query_token: bool = False) -> bool:
        given = ""
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            given = auth[7:].strip()
        if not given:
            cookies = request.headers.get("cookie", "")
            # The dashboard's cookie carries the port: cookies are shared
            # across ports, and two apps' dashboards must not clash.
            given = _cookie(cookies, f"lsq_token_{self.port}") or _cookie(cookies, "lsq_token")
        if not given and allow_query_token:
            given = request.arg("token")
        return bool(given) and hmac.compare_digest(given, self.token)
