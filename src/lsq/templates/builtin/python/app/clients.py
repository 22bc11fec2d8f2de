"""Calling other services of the app.

LSQ gives each service the address of every other one as LSQ_<NAME>_URL, the
name upper-cased with every other character than a letter or digit as `_`:
`user-api` is LSQ_USER_API_URL. `call("user-api", "GET", "/items")` sends the
current trace along in a `traceparent` header.
"""

from __future__ import annotations

import os
import re
from typing import Any

import httpx

from app.observability import current_trace


def env_name(service: str) -> str:
    return "LSQ_" + re.sub(r"[^A-Z0-9]", "_", service.upper()) + "_URL"


def service_url(service: str) -> str:
    name = env_name(service)
    url = os.environ.get(name)
    if not url:
        raise LookupError(
            f"{name} is not set: is {service!r} in lsq.yaml and running under lsq up?"
        )
    return url.rstrip("/")


def trace_headers() -> dict[str, str]:
    trace = current_trace.get()
    return {"traceparent": trace.traceparent()} if trace else {}


def call(service: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {**trace_headers(), **kwargs.pop("headers", {})}
    kwargs.setdefault("timeout", 10.0)
    return httpx.request(method, service_url(service) + path, headers=headers, **kwargs)
