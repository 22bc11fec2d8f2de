"""When a call may be tried again, and how long to wait first.

The rules are the gateway's: only a call that is safe to repeat (an
idempotent method, or any method with an `Idempotency-Key` header); only
after 502, 503, 504 or a connection error before any response; waits with
full jitter (uniform between 0 and the capped exponential), or the server's
`Retry-After` when it fits the deadline; and a budget, so that retries stay a
small share of all calls and cannot multiply an outage.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
RETRY_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` retries after the first try (0: never retry)."""

    attempts: int = 2
    backoff_base: float = 0.025
    backoff_cap: float = 0.25
    budget_ratio: float = 0.2
    budget_per_s: float = 10.0
    budget_window: float = 10.0
    max_retry_after: float = 5.0

    def backoff(self, retry: int) -> float:
        """Full jitter: anywhere between 0 and base·2^retry (capped)."""
        return random.uniform(0.0, min(self.backoff_cap, self.backoff_base * 2**retry))


def may_repeat(method: str, headers: object) -> bool:
    has_key = "idempotency-key" in {str(k).lower() for k in headers}  # type: ignore[attr-defined]
    return method.upper() in IDEMPOTENT or has_key


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a `Retry-After` value (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class RetryBudget:
    """Retries allowed over a sliding window: at least `budget_per_s` per
    second, or `budget_ratio` of the calls made, whichever is more."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._calls: deque[float] = deque()
        self._retries: deque[float] = deque()
        self._lock = threading.Lock()

    def record_call(self) -> None:
        with self._lock:
            self._calls.append(time.monotonic())

    def try_spend(self) -> bool:
        """Take one retry from the budget; False when it is used up."""
        p = self._policy
        with self._lock:
            now = time.monotonic()
            for queue in (self._calls, self._retries):
                while queue and queue[0] < now - p.budget_window:
                    queue.popleft()
            allowed = max(p.budget_per_s * p.budget_window, p.budget_ratio * len(self._calls))
            if len(self._retries) >= allowed:
                return False
            self._retries.append(now)
            return True
