"""Canary analysis: the new version against the old, on the gateway's own
per-replica counters, over the same stretch of time.

Counters in the gateway only grow, so a step takes a baseline when it starts
and judges the difference. Errors are 5xx answers and failed attempts
(connect, timeout, aborted); 4xx are the client's and do not count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the runtime reads a frozen app (lsq.manifest._frozen), not the schema
    from lsq.manifest._schema import Analysis

FAILURE_CLASSES = ("5xx", "connect", "timeout", "aborted")


@dataclass
class Figures:
    """Requests, errors and a latency histogram summed over some replicas."""

    requests: int = 0
    errors: int = 0
    counts: list[int] = field(default_factory=list)
    bounds: list[float] = field(default_factory=list)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def p99(self) -> float | None:
        """Upper bound (ms) of the bucket that holds the 99th percentile."""
        total = sum(self.counts)
        if total == 0:
            return None
        seen = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            seen += count
            if seen >= 0.99 * total:
                return bound
        return self.bounds[-1] if self.bounds else None

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 4),
            "p99_ms": self.p99(),
        }


def figures(replicas: dict[str, Any], ids: list[str], since: dict[str, Any]) -> Figures:
    """Sum of `ids` in a gateway stats "replicas" map, minus the baseline."""
    out = Figures()
    for rid in ids:
        now, then = replicas.get(rid), since.get(rid)
        if now is None:
            continue
        out.requests += max(0, now["requests"] - (then["requests"] if then else 0))
        out.errors += max(0, _failures(now) - (_failures(then) if then else 0))
        hist = now["histogram"]
        old = then["histogram"]["counts"] if then else [0] * len(hist["counts"])
        if not out.counts:
            out.counts = [0] * len(hist["counts"])
            out.bounds = list(hist["bounds_ms"])
        for i, (a, b) in enumerate(zip(hist["counts"], old, strict=True)):
            out.counts[i] += max(0, a - b)
    return out


def _failures(replica: dict[str, Any]) -> int:
    errors = replica.get("errors", {})
    return sum(int(errors.get(k, 0)) for k in FAILURE_CLASSES)


@dataclass(frozen=True)
class Verdict:
    """`pass`, `fail` or `inconclusive`, why, and the figures it rests on."""

    result: str
    reason: str
    new: Figures
    old: Figures

    def to_json(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "reason": self.reason,
            "new": self.new.to_json(),
            "old": self.old.to_json(),
        }


def judge(new: Figures, old: Figures, rules: Analysis, *, labels: tuple[str, str]) -> Verdict:
    """Compare `new` with `old`; never passes on too little traffic."""
    new_label, old_label = labels
    need = rules.min_requests
    if new.requests < need or old.requests < need:
        why = (
            f"inconclusive: {new.requests} requests to {new_label} and {old.requests} "
            f"to {old_label}, need {need} each"
        )
        return Verdict("inconclusive", why, new, old)
    increase = new.error_rate - old.error_rate
    if increase > rules.max_error_increase:
        why = (
            f"error rate {new.error_rate:.1%} on {new_label} ({new.errors}/{new.requests}) "
            f"against {old.error_rate:.1%} on {old_label}; allowed "
            f"+{rules.max_error_increase:.1%}"
        )
        return Verdict("fail", why, new, old)
    slow = _p99_verdict(new, old, rules, labels)
    if slow:
        return Verdict("fail", slow, new, old)
    why = (
        f"pass: error rate {new.error_rate:.1%} vs {old.error_rate:.1%}, "
        f"p99 {_ms(new.p99())} vs {_ms(old.p99())} ({new.requests}/{old.requests} requests)"
    )
    return Verdict("pass", why, new, old)


def _p99_verdict(new: Figures, old: Figures, rules: Analysis, labels: tuple[str, str]) -> str:
    new_p99, old_p99 = new.p99(), old.p99()
    if new_p99 is None or old_p99 is None:
        return ""
    slack_ms = rules.p99_slack * 1000
    if new_p99 > old_p99 * rules.max_p99_ratio and new_p99 - old_p99 > slack_ms:
        return (
            f"p99 {_ms(new_p99)} on {labels[0]} against {_ms(old_p99)} on {labels[1]}; "
            f"allowed x{rules.max_p99_ratio:g} (or +{slack_ms:g} ms)"
        )
    return ""


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"
