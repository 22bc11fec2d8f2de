"""`lsq dashboard`, `lsq top` and `/metrics` against a running demo app."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

from dashboard_helpers import LSQ, Running, wait_for
from prometheus_client.parser import text_string_to_metric_families


def test_dashboard_prints_the_url_with_the_token(demo: Running) -> None:
    result = demo.lsq("dashboard")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"http://127.0.0.1:{demo.port}/?token={demo.token}"


def test_dashboard_without_a_runtime_says_how_to_start_one(tmp_path: Path) -> None:
    (tmp_path / "lsq.yaml").write_text("services:\n  a:\n    command: [true]\n")
    result = subprocess.run(
        [LSQ, "dashboard"],
        cwd=tmp_path,
        capture_output=True,
        check=False,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "lsq up -d" in result.stderr


def test_top_shows_every_replica_with_state_and_memory(demo: Running) -> None:
    wait_for(
        lambda: all(
            i["memory"] for s in demo.status()["services"] for i in s["instances"]
        ),
        10,
        "a process sample",
    )
    result = demo.lsq("top", "-n", "1")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name in ("back", "front", "back-0", "front-0", "running", "MiB", "rst"):
        assert name in out, out


def test_metrics_in_prometheus_text_format(demo: Running) -> None:
    with urllib.request.urlopen(
        f"{demo.address('front')}/order?tag=metrics", timeout=10
    ) as resp:
        resp.read()
    status, headers, body = demo.request("GET", "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    up = {s.labels["instance"]: s.value for s in families["lsq_instance_up"].samples}
    assert up == {"back-0": 1.0, "front-0": 1.0}
    assert (
        "lsq_instance_restarts" in families and "lsq_instance_memory_bytes" in families
    )
    if demo.status()["gateway"]:

        def front_requests() -> float:
            _, _, text = demo.request("GET", "/metrics")
            fams = {f.name: f for f in text_string_to_metric_families(text.decode())}
            fam = fams.get("lsq_gateway_requests")
            return (
                next(
                    (
                        s.value
                        for s in fam.samples
                        if s.labels.get("service") == "front"
                    ),
                    0,
                )
                if fam
                else 0
            )

        wait_for(lambda: front_requests() >= 1, 10, "front's request count in /metrics")
