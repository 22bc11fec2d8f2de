"""Faults as plain values: what a fault is, where it applies, when it ends.

A fault is asked for as one flat JSON object, the same from the CLI, the
control API, a scenario file and the Python helper::

    {"kind": "latency", "service": "orders", "ms": 300, "jitter_ms": 50,
     "percent": 50, "prefix": "/orders", "method": "POST",
     "headers": {"x-test": "1"}, "replica": "orders-1", "source": "web",
     "duration": "30s", "halt_if": "error_rate>0.5"}

HTTP-level kinds are handed to the gateway through the routing table; the
process-level kinds (`kill`, `pause`, `fail-health`) act on one replica.
"""

from __future__ import annotations

import math

import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lsq.errors import UsageError
from lsq.manifest._frozen import parse_duration

HTTP_KINDS = ("latency", "abort", "reset", "hang", "bandwidth", "truncate", "partition")
PROCESS_KINDS = ("kill", "pause", "fail-health")
KINDS = HTTP_KINDS + PROCESS_KINDS

DEFAULT_DURATION = 300.0
MAX_DURATION = 3600.0

# Parameters of each kind: name -> (type, default or None when required).
_PARAMS: dict[str, dict[str, tuple[type, object]]] = {
    "latency": {"ms": (float, None), "jitter_ms": (float, 0.0)},
    "abort": {"status": (int, 503)},
    "reset": {},
    "hang": {},
    "bandwidth": {"bytes_per_s": (int, None)},
    "truncate": {"after_bytes": (int, 0)},
    "partition": {},
    "kill": {},
    "pause": {},
    "fail-health": {},
}
_MATCH_KEYS = ("prefix", "method", "headers", "percent", "replica", "source")
_OTHER_KEYS = ("kind", "service", "duration", "halt_if")

_HALT = re.compile(
    r"^\s*(?:(?P<service>[a-z0-9][a-z0-9._-]*)\.)?"
    r"(?P<metric>error_rate|p50|p95|p99)\s*(?P<op>>=|<=|>|<)\s*"
    r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>%|ms)?\s*$"
)


@dataclass(frozen=True)
class Halt:
    """Stop a fault early: `error_rate>0.5`, `p99>800ms`, `orders.error_rate>=10%`.

    `service` is the service whose gateway counters are read (the fault's own
    when left out); error rates are fractions, latencies milliseconds.
    """

    metric: str
    op: str
    value: float
    service: str = ""

    @classmethod
    def parse(cls, text: str) -> Halt:
        found = _HALT.match(text)
        if found is None:
            raise UsageError(
                f"halt condition {text!r}: expected METRIC OP VALUE such as "
                "error_rate>0.5, p99>800ms or orders.error_rate>=10%; "
                "metrics: error_rate, p50, p95, p99"
            )
        value = float(found["value"])
        if found["unit"] == "%":
            value /= 100.0
        return cls(found["metric"], found["op"], value, found["service"] or "")

    def holds(self, measured: float) -> bool:
        ops = {
            ">": measured > self.value,
            ">=": measured >= self.value,
            "<": measured < self.value,
            "<=": measured <= self.value,
        }
        return ops[self.op]

    def __str__(self) -> str:
        where = f"{self.service}." if self.service else ""
        return f"{where}{self.metric}{self.op}{self.value:g}"


@dataclass
class Fault:
    """One fault; `state` moves from active to expired, removed, halted or done."""

    id: str
    kind: str
    service: str
    params: dict[str, Any]
    match: dict[str, Any]
    expires_at: float
    halt: Halt | None = None
    created: float = field(default_factory=time.time)
    state: str = "active"
    reason: str = ""

    @property
    def http(self) -> bool:
        return self.kind in HTTP_KINDS

    def gateway_json(self) -> dict[str, Any]:
        """The fault as the gateway reads it from the routing table."""
        return {
            "id": self.id,
            "kind": self.kind,
            "params": dict(self.params),
            "match": dict(self.match),
            "expires_at": self.expires_at,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.gateway_json(),
            "service": self.service,
            "halt_if": str(self.halt) if self.halt else None,
            "created": self.created,
            "state": self.state,
            "reason": self.reason,
        }

    def describe(self) -> str:
        bits = [f"{k}={v}" for k, v in self.params.items()]
        bits += [f"{k}={v}" for k, v in self.match.items()]
        detail = f" ({', '.join(bits)})" if bits else ""
        return f"{self.kind} on {self.service}{detail}"


def new_id() -> str:
    return "f" + secrets.token_hex(3)


def parse_fault(
    spec: Mapping[str, Any], *, max_duration: float = MAX_DURATION, now: float | None = None
) -> Fault:
    """Check one flat fault request and turn it into a `Fault` (not yet applied)."""
    if not isinstance(spec, Mapping):
        raise UsageError(f"a fault is a JSON object, found {type(spec).__name__}")
    unknown = set(spec) - set(_MATCH_KEYS) - set(_OTHER_KEYS) - _all_param_names()
    if unknown:
        raise UsageError(
            f"fault: unknown keys {sorted(unknown)}; known: "
            f"{sorted(set(_MATCH_KEYS) | set(_OTHER_KEYS) | _all_param_names())}"
        )
    kind = str(spec.get("kind", ""))
    if kind not in KINDS:
        raise UsageError(f"fault kind {kind!r} is unknown; expected one of {', '.join(KINDS)}")
    service = str(spec.get("service") or "")
    if not service:
        raise UsageError(f"fault {kind}: the service is missing")
    params = _params(kind, spec)
    match = _match(kind, spec)
    duration = _duration(spec.get("duration"), max_duration)
    halt = Halt.parse(str(spec["halt_if"])) if spec.get("halt_if") else None
    start = time.time() if now is None else now
    return Fault(new_id(), kind, service, params, match, start + duration, halt, created=start)


def _all_param_names() -> set[str]:
    return {name for params in _PARAMS.values() for name in params}


def _params(kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, (typ, default) in _PARAMS[kind].items():
        value = spec.get(name, default)
        if value is None:
            raise UsageError(f"fault {kind}: {name} is required (for example {name}=300)")
        try:
            number = typ(value)
        except (TypeError, ValueError):
            raise UsageError(f"fault {kind}: {name} must be a number, found {value!r}") from None
        if number < 0 or not math.isfinite(number):  # type: ignore[arg-type,operator]
            raise UsageError(
                f"fault {kind}: {name} must be a finite number, 0 or more, found {value!r}"
            )
        params[name] = number
    foreign = {k for k in spec if k in _all_param_names() and k not in _PARAMS[kind]}
    if foreign:
        raise UsageError(f"fault {kind}: {sorted(foreign)} do not apply to this kind")
    status = params.get("status")
    if kind == "abort" and (not 200 <= status <= 599 or status in (204, 304)):
        # The gateway answers with a JSON body: 1xx, 204 and 304 cannot carry one.
        raise UsageError(
            f"fault abort: status must be 200..599 and not 204 or 304 (a response "
            f"with a body), found {status}"
        )
    return params


def _match(kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    match: dict[str, Any] = {}
    for key in ("prefix", "method", "replica", "source"):
        if spec.get(key):
            match[key] = str(spec[key])
    if "prefix" in match and not match["prefix"].startswith("/"):
        raise UsageError(f"fault {kind}: prefix must start with /, found {match['prefix']!r}")
    if "method" in match:
        match["method"] = match["method"].upper()
    if spec.get("headers"):
        headers = spec["headers"]
        if not isinstance(headers, Mapping):
            raise UsageError(f"fault {kind}: headers must be a mapping, found {headers!r}")
        match["headers"] = {str(k).lower(): str(v) for k, v in headers.items()}
    if spec.get("percent") is not None:
        percent = float(spec["percent"])
        if not 0 < percent <= 100:  # also refuses NaN
            raise UsageError(f"fault {kind}: percent must be in (0, 100], found {percent:g}")
        match["percent"] = percent
    if kind == "partition" and "source" not in match:
        raise UsageError("fault partition: name the calling service with source (--from)")
    if kind in PROCESS_KINDS and set(match) - {"replica"}:
        raise UsageError(
            f"fault {kind} acts on a process: only replica applies, "
            f"found {sorted(set(match) - {'replica'})}"
        )
    return match


def _duration(value: object, max_duration: float) -> float:
    if value is None:
        return min(DEFAULT_DURATION, max_duration)
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"fault duration: {exc}") from None
    if seconds <= 0 or seconds > max_duration:
        raise UsageError(
            f"fault duration must be more than 0 and at most {max_duration:g}s, "
            f"found {seconds:g}s"
        )
    return seconds
