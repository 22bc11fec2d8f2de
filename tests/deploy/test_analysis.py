"""The canary verdict on per-replica gateway figures (no processes needed)."""

from __future__ import annotations

from typing import Any

import pytest

from lsq.deploy import figures, judge
from lsq.manifest._schema import Analysis

BOUNDS = [1.0, 10.0, 100.0, 1000.0, 10000.0]


def replica(requests: int, fives: int = 0, slow: int = 0, *, fours: int = 0) -> dict[str, Any]:
    fast = requests - slow
    return {
        "requests": requests,
        "errors": {"4xx": fours, "5xx": fives, "connect": 0, "timeout": 0, "aborted": 0},
        "histogram": {"bounds_ms": BOUNDS, "counts": [0, fast, 0, slow, 0]},
    }


def verdict(new: dict[str, Any], old: dict[str, Any], **rules: Any):  # type: ignore[no-untyped-def]
    now = {"web-v2-0": new, "web-0": old}
    return judge(
        figures(now, ["web-v2-0"], {}),
        figures(now, ["web-0"], {}),
        Analysis(**rules),
        labels=("v2", "v1"),
    )


def test_too_few_requests_is_inconclusive_and_says_how_many() -> None:
    result = verdict(replica(12, fives=12), replica(400), min_requests=50)
    assert result.result == "inconclusive"
    assert result.reason == "inconclusive: 12 requests to v2 and 400 to v1, need 50 each"


def test_five_percent_errors_against_none_fails() -> None:
    result = verdict(replica(100, fives=5), replica(100))
    assert result.result == "fail"
    assert "error rate 5.0% on v2 (5/100)" in result.reason


def test_client_errors_do_not_count() -> None:
    assert verdict(replica(100, fours=30), replica(100)).result == "pass"


def test_same_error_rate_on_both_passes() -> None:
    assert verdict(replica(200, fives=10), replica(200, fives=10)).result == "pass"


@pytest.mark.parametrize(("slow_new", "result"), [(0, "pass"), (1, "pass"), (2, "fail"), (10, "fail")])
def test_p99_latency(slow_new: int, result: str) -> None:
    assert verdict(replica(100, slow=slow_new), replica(100)).result == result


def test_figures_subtract_the_baseline() -> None:
    before = {"web-0": replica(100, fives=100)}
    after = {"web-0": replica(150, fives=100)}
    got = figures(after, ["web-0"], before)
    assert (got.requests, got.errors, sum(got.counts)) == (50, 0, 50)


def test_steps_must_rise_and_end_at_100() -> None:
    from lsq.manifest._schema import Release

    assert Release(steps=[10, 50]).steps == [10, 50, 100]
    with pytest.raises(ValueError, match="steps must rise"):
        Release(steps=[50, 10])
