"""Adding, listing, removing, expiring and halting faults: CLI and control API."""

from __future__ import annotations

import json

import httpx
import pytest
from chelpers import App, wait_for

from lsq.chaos import Halt, parse_fault
from lsq.control import ControlClient
from lsq.errors import ControlError, UsageError


def faults(app: App) -> list[dict[str, object]]:
    result = app.lsq("chaos", "list", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_cli_add_list_rm(clean: App) -> None:
    added = clean.lsq("chaos", "add", "latency", "web", "--ms", "300", "--jitter", "50",
                      "--prefix", "/x", "--method", "get", "--header", "x-test=1",
                      "--percent", "50", "--for", "1m", "--json")
    assert added.returncode == 0, added.stderr
    fault = json.loads(added.stdout)
    assert fault["params"] == {"ms": 300.0, "jitter_ms": 50.0}
    assert fault["match"] == {"prefix": "/x", "method": "GET", "headers": {"x-test": "1"},
                              "percent": 50.0}
    assert [f["id"] for f in faults(clean)] == [fault["id"]]
    assert clean.lsq("chaos", "rm", fault["id"]).returncode == 0
    assert faults(clean) == []
    again = clean.lsq("chaos", "rm", fault["id"])
    assert again.returncode == 2 and "no active fault" in again.stderr
    assert any(f"added {fault['id']}" in e["message"] for e in clean.events())


def test_the_control_api_takes_flat_json(clean: App) -> None:
    client = ControlClient(clean.root / ".lsq")
    try:
        fault = client.post("/v1/chaos", {"kind": "abort", "service": "web", "status": 418,
                                          "duration": "20s"})
        assert fault["params"] == {"status": 418}  # type: ignore[index]
        assert [f["id"] for f in client.get("/v1/chaos")] == [fault["id"]]  # type: ignore[index, union-attr]
        with pytest.raises(ControlError) as bad:
            client.post("/v1/chaos", {"kind": "latency", "service": "web"})
        assert bad.value.status == 400 and "ms is required" in str(bad.value)
        with pytest.raises(ControlError) as unknown:
            client.post("/v1/chaos", {"kind": "abort", "service": "nope"})
        assert "no service 'nope'" in str(unknown.value)
        client.post(f"/v1/chaos/{fault['id']}/remove")  # type: ignore[index]
        assert client.get("/v1/chaos") == []
    finally:
        client.close()


def test_a_fault_expires_by_itself(clean: App) -> None:
    added = clean.lsq("chaos", "add", "abort", "web", "--for", "1s", "--json")
    fault_id = json.loads(added.stdout)["id"]
    wait_for(lambda: faults(clean) == [], 5, "the fault to expire")
    assert any(f"{fault_id} ended (expired)" in e["message"] for e in clean.events())


def test_a_halt_condition_ends_the_fault_when_errors_rise(clean: App) -> None:
    added = clean.lsq("chaos", "add", "fail-health", "web", "--replica", "web-1",
                      "--halt-if", "error_rate>50%", "--json")
    assert added.returncode == 0, added.stderr
    fault_id = json.loads(added.stdout)["id"]
    url = clean.address("web") + "/fail"  # the service itself answers 500

    def halted() -> bool:
        for _ in range(5):
            httpx.get(url, timeout=5)
        return faults(clean) == []

    wait_for(halted, 15, "the halt condition to end the fault")
    assert any(f"{fault_id} ended (halted" in e["message"] for e in clean.events())


def test_the_duration_is_bounded(clean: App) -> None:
    result = clean.lsq("chaos", "add", "latency", "web", "--ms", "1", "--for", "2h")
    assert result.returncode == 2
    assert "at most 3600s" in result.stderr


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"kind": "partition", "service": "web"}, "source"),
        ({"kind": "abort", "service": "web", "status": 99}, "200..599"),
        # The gateway's answer has a JSON body, which these cannot carry.
        ({"kind": "abort", "service": "web", "status": 101}, "200..599"),
        ({"kind": "abort", "service": "web", "status": 204}, "not 204 or 304"),
        ({"kind": "abort", "service": "web", "status": 304}, "not 204 or 304"),
        ({"kind": "kill", "service": "web", "prefix": "/x"}, "only replica applies"),
        ({"kind": "abort", "service": "web", "ms": 5}, "do not apply"),
        ({"kind": "abort", "service": "web", "percent": 0}, "percent"),
        ({"kind": "abort", "service": "web", "prefix": "x"}, "must start with /"),
        ({"kind": "abort", "service": "web", "halt_if": "cpu>3"}, "halt condition"),
        ({"kind": "abort"}, "service is missing"),
    ],
)
def test_bad_faults_are_refused_with_the_reason(spec: dict[str, object], error: str) -> None:
    with pytest.raises(UsageError, match=error):
        parse_fault(spec)


@pytest.mark.parametrize(
    ("text", "measured", "holds"),
    [("error_rate>0.5", 0.6, True), ("error_rate>50%", 0.5, False),
     ("orders.p99>=800ms", 800.0, True), ("p50<10", 12.0, False)],
)
def test_halt_conditions(text: str, measured: float, holds: bool) -> None:
    assert Halt.parse(text).holds(measured) is holds
