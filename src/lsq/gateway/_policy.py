"""Resilience policies: timeouts, retries, outlier ejection, the breaker.

The runtime puts each service's effective policy into the routing table as a
plain dict (`ServiceEntry.policy`, see docs/gateway.md); a worker turns it
into a `Policy` once per table update, so requests only read attributes.
`effective_policy()` tells where every value came from (default or lsq.yaml).
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any

# The compiled build (setup.py) has the digest of the sources it was made
# from here; lsq/gateway/_compiled.py compares it with them at import.
COMPILED_FROM: str | None = None

DEFAULTS: dict[str, Any] = {
    "connect_timeout": 1.0,
    "try_timeout": 15.0,
    "timeout": 30.0,
    "retries": {
        "attempts": 2,
        "budget_ratio": 0.2,
        "budget_per_s": 10.0,
        "backoff_base": 0.025,
        "backoff_cap": 0.25,
    },
    "outlier": {
        "consecutive_failures": 5,
        "base_ejection": 10.0,
        "max_ejected_ratio": 0.5,
    },
    "breaker": {"enabled": True},
}
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})
RETRY_STATUS = frozenset({502, 503, 504})
MAX_EJECTION = 300.0  # the growing ejection period stops growing here
RETRY_BODY = 64 * 1024  # larger request bodies are not replayed by a policy retry


class Policy:
    """One service's (or one route prefix's) policy, flattened for speed."""

    __slots__ = (
        "attempts",
        "backoff_base",
        "backoff_cap",
        "base_ejection",
        "breaker",
        "budget_per_s",
        "budget_ratio",
        "connect_timeout",
        "consecutive_failures",
        "line",
        "line_at",
        "max_ejected_ratio",
        "timeout",
        "try_timeout",
    )

    def __init__(self, data: Mapping[str, Any]) -> None:
        full = merged(DEFAULTS, data)
        retries, outlier = full["retries"], full["outlier"]
        self.connect_timeout = float(full["connect_timeout"])
        self.try_timeout = float(full["try_timeout"])
        self.timeout = float(full["timeout"])
        self.attempts = int(retries["attempts"])
        self.budget_ratio = float(retries["budget_ratio"])
        self.budget_per_s = float(retries["budget_per_s"])
        self.backoff_base = float(retries["backoff_base"])
        self.backoff_cap = float(retries["backoff_cap"])
        self.consecutive_failures = int(outlier["consecutive_failures"])
        self.base_ejection = float(outlier["base_ejection"])
        self.max_ejected_ratio = float(outlier["max_ejected_ratio"])
        self.breaker = bool(full["breaker"].get("enabled", True))
        # The last X-LSQ-Deadline line made under this policy, and the loop
        # time (millisecond resolution) it was made at.
        self.line = b""
        self.line_at = -1.0

    def backoff(self, retry: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^retry))."""
        return random.random() * min(self.backoff_cap, self.backoff_base * 2**retry)


def merged(base: Mapping[str, Any], over: Mapping[str, Any] | None) -> dict[str, Any]:
    """`base` with the keys of `over` laid on top, one level of nesting deep."""
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in base.items()}
    for key, value in (over or {}).items():
        if key == "routes" or value is None:
            continue
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key].update({k: v for k, v in value.items() if v is not None})
        else:
            out[key] = value
    return out


def route_policies(data: Mapping[str, Any]) -> tuple[tuple[bytes, Policy], ...]:
    """Per-prefix overrides, longest prefix first."""
    routes = sorted(
        data.get("routes") or (), key=lambda r: -len(str(r.get("prefix", "")))
    )
    return tuple(
        (str(r["prefix"]).encode(), Policy(merged(merged(DEFAULTS, data), r)))
        for r in routes
    )


class RetryBudget:
    """At most `ratio` of requests plus `per_s` retries a second, per service.

    A token bucket: each request adds `ratio` tokens, time adds `per_s` a
    second, a retry takes one; the bucket holds at most `per_s` plus what
    the last second's requests earned.
    """

    __slots__ = ("last", "per_s", "ratio", "tokens")

    def __init__(self, ratio: float, per_s: float) -> None:
        self.ratio = ratio
        self.per_s = per_s
        self.tokens = per_s
        self.last = time.monotonic()

    def take(self) -> bool:
        """Spend one token on a retry; False when the budget is exhausted."""
        now = time.monotonic()
        cap = 2.0 * max(self.per_s, 1.0) + 50.0 * self.ratio
        self.tokens = min(cap, self.tokens + (now - self.last) * self.per_s)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def earn(self) -> None:
        """One request went out: `ratio` more tokens (called per request)."""
        self.tokens += self.ratio


def effective_policy(service: Any) -> dict[str, Any]:
    """The policy a manifest service gets, each value with its origin.

    `service` is a `lsq.manifest._schema.Service` (anything with `policy`
    and `routes`). Every key maps to `{"value": ..., "origin": "default" |
    "lsq.yaml"}`; the groups `retries`, `outlier` and `breaker` map their
    keys the same way; `routes` lists each prefix's overrides, all from
    lsq.yaml.
    """
    declared = _declared(service)
    out: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        given = declared.get(key)
        if isinstance(default, dict):
            given = given or {}
            out[key] = {k: _origin(given.get(k), v) for k, v in default.items()}
        else:
            out[key] = _origin(given, default)
    out["routes"] = [
        {
            "prefix": r["prefix"],
            **{k: {"value": v, "origin": "lsq.yaml"} for k, v in _flat(r).items()},
        }
        for r in declared["routes"]
    ]
    return out


def table_policy(service: Any) -> dict[str, Any]:
    """The JSON-able policy dict for the routing table (defaults filled in)."""
    declared = _declared(service)
    full = merged(DEFAULTS, declared)
    full["routes"] = declared["routes"]
    return full


def _declared(service: Any) -> dict[str, Any]:
    """What lsq.yaml says: the service's policy plus `routes` with overrides."""
    policy = getattr(service, "policy", None)
    out = _dump(policy)
    out["routes"] = [
        {"prefix": r.prefix, **_dump(r.policy)}
        for r in getattr(service, "routes", ()) or ()
        if getattr(r, "policy", None) is not None
    ]
    return out


def _dump(policy: Any) -> dict[str, Any]:
    if policy is None:
        return {}
    from lsq.manifest._frozen import is_model, plain

    if is_model(policy):  # from the manifest: a model, or its frozen form
        return plain(policy, exclude_none=True)
    return dict(policy)


def _origin(given: Any, default: Any) -> dict[str, Any]:
    if given is None:
        return {"value": default, "origin": "default"}
    return {"value": given, "origin": "lsq.yaml"}


def _flat(route: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in route.items():
        if key == "prefix":
            continue
        if isinstance(value, Mapping):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out
