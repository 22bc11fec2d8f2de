"""HTTP clients for services run by LSQ: `Client` and `AsyncClient`.

Both are httpx clients (every httpx method works) that, on every request:
find a service by name (`Client(service="orders")` reads LSQ_ORDERS_URL);
send the deadline (`X-LSQ-Deadline`) and a `traceparent` taken from the
current context (see `lsq.client.context`); bound each try by the time left;
and retry by the rules in `lsq.client._retry`. Errors are httpx's own; a
deadline that has passed raises `httpx.TimeoutException` without a call.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx

from lsq.client._context import (
    DEADLINE_HEADER,
    current_deadline,
    current_traceparent,
    new_traceparent,
)
from lsq.client._retry import (
    RETRY_STATUSES,
    RetryBudget,
    RetryPolicy,
    may_repeat,
    retry_after,
)
from lsq.errors import ServiceError
from lsq.manifest import env_name

# A connection error of these kinds happened before any response.
_BEFORE_RESPONSE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)


def service_url(name: str) -> str:
    """The address LSQ gave this process for service `name`."""
    var = env_name(name)
    url = os.environ.get(var)
    if not url:
        raise ServiceError(
            f"service {name!r}: {var} is not set; run this process under LSQ with "
            f"{name!r} in its depends_on, or set {var} to the service's URL"
        )
    return url.rstrip("/")


class _Plan:
    """The retry decisions for one request (shared by both clients)."""

    def __init__(self, request: httpx.Request, policy: RetryPolicy, budget: RetryBudget,
                 timeout: float | None) -> None:
        self.request = request
        self.policy = policy
        self.budget = budget
        deadline = current_deadline()
        if timeout is not None:
            deadline = min(filter(None, (deadline, time.time() + timeout)))
        self.deadline = deadline
        self.retries = 0
        self.repeatable = may_repeat(request.method, request.headers.keys()) and isinstance(
            request.stream, httpx.ByteStream
        )
        request.headers["traceparent"] = new_traceparent(
            request.headers.get("traceparent") or current_traceparent()
        )
        if deadline is not None:
            request.headers[DEADLINE_HEADER] = f"{deadline:.3f}"

    def left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.time()

    def check_deadline(self) -> None:
        left = self.left()
        if left is not None and left <= 0:
            raise httpx.TimeoutException(
                f"{self.request.method} {self.request.url}: the deadline passed "
                f"{-left:.3f}s ago; no call made",
                request=self.request,
            )

    def timeout_ext(self) -> None:
        # Each try gets at most the time left before the deadline.
        left = self.left()
        if left is None:
            return
        current = self.request.extensions.get("timeout", {})
        self.request.extensions["timeout"] = {
            k: min(v, left) if v is not None else left
            for k, v in (current or dict.fromkeys(("connect", "read", "write", "pool"))).items()
        }

    def wait_before_retry(self, response: httpx.Response | None) -> float | None:
        """Seconds to wait before the next try, or None to stop trying."""
        if not self.repeatable or self.retries >= self.policy.attempts:
            return None
        wait = self.policy.backoff(self.retries)
        if response is not None:
            if response.status_code not in RETRY_STATUSES:
                return None
            after = retry_after(response.headers.get("retry-after"))
            if after is not None:
                if after > self.policy.max_retry_after:
                    return None
                wait = max(wait, after)
        left = self.left()
        if left is not None and wait >= left:
            return None
        if not self.budget.try_spend():
            return None
        self.retries += 1
        return wait


class _Discovery:
    """What `Client` and `AsyncClient` share: the service's address from its
    `LSQ_<NAME>_URL`, the retry rules and their budget, the overall timeout."""

    def __init__(self, service: str | None = None, *, retry: RetryPolicy | None = None,
                 timeout: float | None = 30.0, **kwargs: Any) -> None:
        if service is not None:
            kwargs.setdefault("base_url", service_url(service))
        super().__init__(timeout=timeout, **kwargs)  # type: ignore[call-arg]
        self.retry = retry or RetryPolicy()
        self.budget = RetryBudget(self.retry)
        self._overall = timeout


class Client(_Discovery, httpx.Client):
    """A sync httpx client with LSQ's discovery, deadline, trace and retries."""


    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:  # type: ignore[override]
        plan = _Plan(request, self.retry, self.budget, self._overall)
        self.budget.record_call()
        while True:
            plan.check_deadline()
            plan.timeout_ext()
            try:
                response = super().send(request, **kwargs)
            except _BEFORE_RESPONSE:
                wait = plan.wait_before_retry(None)
                if wait is None:
                    raise
                time.sleep(wait)
                continue
            wait = plan.wait_before_retry(response)
            if wait is None:
                return response
            response.close()
            time.sleep(wait)


class AsyncClient(_Discovery, httpx.AsyncClient):
    """The asyncio twin of `Client`."""


    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:  # type: ignore[override]
        plan = _Plan(request, self.retry, self.budget, self._overall)
        self.budget.record_call()
        while True:
            plan.check_deadline()
            plan.timeout_ext()
            try:
                response = await super().send(request, **kwargs)
            except _BEFORE_RESPONSE:
                wait = plan.wait_before_retry(None)
                if wait is None:
                    raise
                await asyncio.sleep(wait)
                continue
            wait = plan.wait_before_retry(response)
            if wait is None:
                return response
            await response.aclose()
            await asyncio.sleep(wait)
