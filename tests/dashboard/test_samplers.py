"""Traffic rates from cumulative gateway counters, and process samples."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lsq.dashboard import ProcessSampler, TrafficBook

BOUNDS = [1.0, 2.0, 4.0, 8.0]


def dump(requests: int, errors: int, hist: list[int]) -> dict[str, Any]:
    return {
        "requests": requests,
        "errors": {"4xx": 1, "5xx": errors, "connect": 0},
        "histogram": {"bounds_ms": BOUNDS, "counts": hist},
    }


def test_rates_and_percentiles_come_from_deltas() -> None:
    book = TrafficBook(seconds=3)
    book.add({"services": {"api": dump(100, 0, [100, 0, 0, 0])}}, t=10.0)
    assert book.series() == {"api": []}
    book.add({"services": {"api": dump(150, 5, [100, 40, 0, 10])}}, t=12.0)
    (point,) = book.series()["api"]
    assert point[:3] == [12.0, 25.0, 0.1]
    assert point[3:] == [2.0, 8.0, 8.0]


def test_a_quiet_second_has_no_latency_and_old_points_fall_out() -> None:
    book = TrafficBook(seconds=3)
    for t in range(6):
        book.add({"services": {"api": dump(10, 0, [10, 0, 0, 0])}}, t=float(t))
    points = book.series()["api"]
    assert [p[0] for p in points] == [3.0, 4.0, 5.0]
    assert points[-1] == [5.0, 0.0, 0.0, None, None, None]


def test_counters_that_go_backwards_start_over() -> None:
    book = TrafficBook()
    book.add({"services": {"api": dump(1000, 0, [1000, 0, 0, 0])}}, t=0.0)
    book.add({"services": {"api": dump(4, 0, [0, 4, 0, 0])}}, t=1.0)
    assert book.series()["api"][-1][1:4] == [4.0, 0.0, 2.0]


def test_edges_reported_by_the_gateway_get_rates() -> None:
    book = TrafficBook()
    edge = {"from": "web", "to": "api", **dump(0, 0, [0, 0, 0, 0])}
    book.add({"services": {}, "edges": [edge]}, t=0.0)
    book.add({"services": {}, "edges": [{**edge, "requests": 20}]}, t=2.0)
    assert book.edge_rates() == [
        {"from": "web", "to": "api", "rps": 10.0, "error_rate": 0.0}
    ]


def test_process_sampler_reads_live_pids_and_forgets_dead_ones() -> None:
    sampler = ProcessSampler()
    sampler.sample({os.getpid(), 2**22 + 7})
    cpu, rss = sampler.usage[os.getpid()]
    assert cpu >= 0.0 and rss > 1 << 20
    assert 2**22 + 7 not in sampler.usage
    sampler.sample(set())
    assert sampler.usage == {}


def test_recent_averages_the_last_seconds() -> None:
    book = TrafficBook()
    book.add({"services": {"api": dump(0, 0, [0, 0, 0, 0])}}, t=0.0)
    book.add({"services": {"api": dump(10, 5, [0, 10, 0, 0])}}, t=1.0)
    book.add({"services": {"api": dump(40, 5, [0, 10, 30, 0])}}, t=2.0)
    book.add({"services": {"api": dump(40, 5, [0, 10, 30, 0])}}, t=3.0)
    assert book.services["api"].recent(5) == [
        3.0,
        round(40 / 3, 3),
        0.125,
        4.0,
        4.0,
        4.0,
    ]


def test_traffic_history_survives_a_restart_within_its_window(tmp_path: Path) -> None:
    from lsq.dashboard._samplers import TrafficBook

    book = TrafficBook(seconds=900)
    dump = {"requests": 0, "errors": {}, "histogram": {"counts": [0], "bounds_ms": [1.0]}}
    book.add({"services": {"web": dump}}, t=1000.0)
    book.add({"services": {"web": dict(dump, requests=50)}}, t=1001.0)
    path = tmp_path / "traffic.json"
    book.save(path)

    later = TrafficBook(seconds=900)
    later.load(path, now=1500.0)
    assert [p[:2] for p in later.services["web"].points] == [[1001.0, 50.0]]
    too_late = TrafficBook(seconds=900)
    too_late.load(path, now=1001.0 + 901)
    assert list(too_late.services["web"].points) == []
