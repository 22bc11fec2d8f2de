"""`lsq chaos run`: steady state before, during and after the faults."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from chelpers import App

from lsq.chaos import load_scenario
from lsq.errors import UsageError


def scenario(app: App, name: str, text: str) -> Path:
    path = app.root / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def run(app: App, path: Path) -> tuple[int, dict[str, object], str]:
    report = app.root / (path.stem + ".report.json")
    result = app.lsq("chaos", "run", str(path), "--report", str(report), timeout=90)
    data = json.loads(report.read_text()) if report.exists() else {}
    return result.returncode, data, result.stdout + result.stderr


def test_a_fault_the_app_absorbs_passes(clean: App) -> None:
    path = scenario(clean, "pass.yaml", """
        name: one web replica fails its health check
        steady_state:
          - {service: web, max_error_rate: 1%, min_requests: 3}
        window: 1.5s
        load:
          - {service: web, path: /hello, rate: 10}
        faults:
          - {kind: fail-health, service: web, replica: web-1, duration: 2s}
    """)
    code, report, output = run(clean, path)
    assert code == 0, output
    assert report["held"] is True
    phases = [w["phase"] for w in report["windows"]]  # type: ignore[attr-defined]
    assert phases[0] == "before" and "during" in phases and phases[-1] == "after"
    assert report["load"][0]["sent"] >= 10  # type: ignore[index]
    assert "held" in output
    assert clean.lsq("chaos", "list", "--json").stdout.strip() == "[]"


def test_a_weakness_is_caught_and_exits_1(clean: App) -> None:
    # solo has one replica and restarts after 4 s: killing it leaves no backend.
    path = scenario(clean, "fail.yaml", """
        name: killing the only solo replica
        steady_state:
          - {service: solo, max_error_rate: 5%, min_requests: 3}
        window: 2s
        load:
          - {service: solo, path: /hello, rate: 10, timeout: 2s}
        faults:
          - {kind: kill, service: solo}
    """)
    code, report, output = run(clean, path)
    assert code == 1, output
    assert report["held"] is False
    assert "during" in str(report["outcome"])
    broke = [w for w in report["windows"] if not w["held"]]  # type: ignore[attr-defined]
    assert broke and broke[0]["phase"] == "during"


def test_no_fault_is_injected_when_the_steady_state_does_not_hold_first(clean: App) -> None:
    path = scenario(clean, "unsteady.yaml", """
        name: web fails on its own
        steady_state:
          - {service: web, max_error_rate: 1%}
        window: 1s
        load:
          - {service: web, path: /fail, rate: 10}
        faults:
          - {kind: kill, service: web}
    """)
    pids = [i["pid"] for i in clean.service("web")["instances"]]
    code, report, _ = run(clean, path)
    assert code == 1
    assert "before any fault" in str(report["outcome"])
    assert report["faults"] == []
    assert [i["pid"] for i in clean.service("web")["instances"]] == pids


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("name: x\nsteady_state: []\nfaults: [{kind: kill, service: a}]\n", "steady_state"),
        ("name: x\nsteady_state: [{service: a}]\nfaults: [{kind: nope, service: a}]\n", "unknown"),
        ("name: x\nsteady_state: [{service: a}]\nload: [{service: a, rate: 5000}]\n"
         "faults: [{kind: kill, service: a}]\n", "load.0.rate"),
        ("name: x\nsteady_state: [{service: a}]\nfaults: [{kind: abort, service: a, "
         "duration: 59m}]\n", "under 600s"),
    ],
)
def test_bad_scenarios_are_refused(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=error):
        load_scenario(path)


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "shop" / "chaos"


@pytest.mark.parametrize("name", ["slow-notifications.yaml", "payments-down.yaml"])
def test_the_shop_scenarios_are_valid(name: str) -> None:
    plan = load_scenario(EXAMPLES / name)
    assert plan.steady_state[0].service == "orders"
