"""Scenarios: a steady state, some load, some faults, and a verdict.

    name: slow notifications do not break orders
    steady_state:                   # every check must hold in every window
      - service: orders
        max_error_rate: 1%
        max_p99: 1500ms
        min_requests: 5
    window: 3s                      # length of one measurement
    load:                           # optional; bounded in rate and time
      - service: orders             # or url: http://127.0.0.1:PORT/path
        method: POST
        path: /orders
        json: {product_id: 1, qty: 1, email: a@b.example}
        rate: 5                     # requests per second (at most 200)
    faults:
      - {kind: latency, service: notifications, ms: 300, duration: 10s}

The run: measure one window before any fault (if the steady state does not
hold then, nothing is injected and the run fails); add every fault; measure
window after window until the last fault has ended; remove any fault left;
measure one window after. Measurements are differences of the gateway's
counters, so they see every caller of the service, not only the load.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from lsq.chaos._helper import Chaos
from lsq.chaos._measure import Snapshot, snapshot, window
from lsq.chaos._model import parse_fault
from lsq.errors import ControlError, UsageError
from lsq.manifest._schema import Duration

MAX_RATE = 200.0
MAX_RUN = 600.0
Progress = Callable[[str], None]


def _ratio(value: object) -> object:
    if isinstance(value, str) and value.strip().endswith("%"):
        return float(value.strip()[:-1]) / 100.0
    return value


def _millis(value: object) -> object:
    if isinstance(value, str):
        found = re.match(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$", value)
        if found:
            return float(found[1]) * (1000.0 if found[2] == "s" else 1.0)
    return value


Ratio = Annotated[float, BeforeValidator(_ratio), Field(ge=0, le=1)]
Millis = Annotated[float, BeforeValidator(_millis), Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Check(_Model):
    """One service's steady state, measured at the gateway."""

    service: str
    max_error_rate: Ratio | None = None
    max_p50: Millis | None = None
    max_p95: Millis | None = None
    max_p99: Millis | None = None
    min_requests: int = Field(1, ge=0)

    def verdict(self, measured: dict[str, Any]) -> list[str]:
        """What broke in one window (empty: the check held)."""
        broke: list[str] = []
        if measured["requests"] < self.min_requests:
            broke.append(f"{measured['requests']} requests, fewer than {self.min_requests}")
        if self.max_error_rate is not None and measured["error_rate"] > self.max_error_rate:
            broke.append(f"error rate {measured['error_rate']:.1%} > {self.max_error_rate:.1%}")
        for q in ("p50", "p95", "p99"):
            limit = getattr(self, f"max_{q}")
            value = measured[f"{q}_ms"]
            if limit is not None and value is not None and value > limit:
                broke.append(f"{q} {value:g} ms > {limit:g} ms")
        return broke


class Load(_Model):
    """Requests sent at a steady rate for the whole run (or `duration`)."""

    service: str | None = None
    url: str | None = None
    method: str = "GET"
    path: str = "/"
    json_body: Any = Field(None, alias="json")
    headers: dict[str, str] = Field(default_factory=dict)
    rate: float = Field(5.0, gt=0, le=MAX_RATE)
    duration: Duration | None = None
    timeout: Duration = 5.0
    concurrency: int = Field(4, ge=1, le=64)


class Scenario(_Model):
    name: str
    description: str = ""
    steady_state: list[Check] = Field(min_length=1)
    window: Duration = 3.0
    settle: Duration = Field(1.0, description="Wait after the faults end before measuring.")
    load: list[Load] = Field(default_factory=list)
    faults: list[dict[str, Any]] = Field(min_length=1)

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") or "scenario"

    def fault_seconds(self) -> float:
        return max(parse_fault(f).expires_at - time.time() for f in self.faults)


def load_scenario(path: Path) -> Scenario:
    from ruamel.yaml import YAML, YAMLError

    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        plan = Scenario.model_validate(data)
    except YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UsageError(f"{path}: {where}: {first['msg']}") from None
    for fault in plan.faults:
        try:
            parse_fault(fault)
        except UsageError as exc:
            raise UsageError(f"{path}: faults: {exc}") from None
    total = plan.window * 2 + plan.settle + plan.fault_seconds()
    if total > MAX_RUN:
        raise UsageError(f"{path}: the run would take {total:.0f}s; keep it under {MAX_RUN:g}s")
    return plan


# -- load ---------------------------------------------------------------------------


class LoadRunner:
    """Sends one `Load` from a few threads until stopped or its duration ends."""

    def __init__(self, load: Load, url: str) -> None:
        self.load = load
        self.url = url
        self.sent = 0
        self.statuses: dict[str, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._next = time.monotonic()
        self._end = time.monotonic() + (load.duration or MAX_RUN)
        self._threads = [
            threading.Thread(target=self._work, name=f"load {i}", daemon=True)
            for i in range(load.concurrency)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.load.timeout + 1)

    def _slot(self) -> float | None:
        """The time of this thread's next request, or None when the run is over."""
        with self._lock:
            at = max(self._next, time.monotonic() - 1.0)
            self._next = at + 1.0 / self.load.rate
        return None if at >= self._end else at

    def _work(self) -> None:
        with httpx.Client(timeout=self.load.timeout) as client:
            while not self._stop.is_set():
                at = self._slot()
                if at is None or self._stop.wait(max(0.0, at - time.monotonic())):
                    return
                self._count(self._send(client))

    def _send(self, client: httpx.Client) -> str:
        try:
            resp = client.request(
                self.load.method, self.url, json=self.load.json_body, headers=self.load.headers
            )
        except httpx.TimeoutException:
            return "timeout"
        except httpx.HTTPError:
            return "error"
        return str(resp.status_code)

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.sent += 1
            self.statuses[outcome] = self.statuses.get(outcome, 0) + 1


def _load_url(chaos: Chaos, load: Load) -> str:
    if load.url:
        return load.url
    if not load.service:
        raise UsageError("load: give service (and path) or url")
    return chaos.address(load.service).rstrip("/") + load.path


# -- the run ------------------------------------------------------------------------


class _Run:
    def __init__(self, plan: Scenario, chaos: Chaos, progress: Progress) -> None:
        self.plan = plan
        self.chaos = chaos
        self.progress = progress
        self.windows: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []

    def measure(self, phase: str, seconds: float) -> bool:
        before = self._snapshot()
        time.sleep(seconds)
        after = self._snapshot()
        held = True
        for check in self.plan.steady_state:
            measured = window(before, after, check.service).to_json()
            broke = check.verdict(measured)
            held &= not broke
            self.windows.append(
                {"phase": phase, "service": check.service, "at": time.time(),
                 **measured, "held": not broke, "broke": broke}
            )
            verdict = "held" if not broke else "BROKE: " + "; ".join(broke)
            self.progress(f"{phase}: {check.service} {verdict}")
        return held

    def _snapshot(self) -> Snapshot:
        return snapshot(self.chaos.stats())

    def inject(self) -> None:
        for spec in self.plan.faults:
            handle = self.chaos.add(str(spec["kind"]), str(spec["service"]),
                                    **{k: v for k, v in spec.items() if k not in ("kind", "service")})
            self.faults.append(handle.data)
            self.progress(f"added {handle.id}: {spec['kind']} on {spec['service']}")

    def active(self) -> list[str]:
        ours = {f["id"] for f in self.faults}
        return [f["id"] for f in self.chaos.list() if f["id"] in ours]

    def remove_left(self) -> None:
        for fault_id in self.active():
            try:
                self.chaos.remove(fault_id)
            except ControlError:
                pass  # it ended between the list and the remove


def run_scenario(plan: Scenario, app_dir: Path, *, progress: Progress = lambda text: None) -> dict[str, Any]:
    """Run `plan` against the running app in `app_dir`; returns the report."""
    started = time.time()
    with Chaos(app_dir) as chaos:
        run = _Run(plan, chaos, progress)
        loads = [LoadRunner(load, _load_url(chaos, load)) for load in plan.load]
        for runner in loads:
            runner.start()
        try:
            outcome = _phases(run)
        finally:
            run.remove_left()
            for runner in loads:
                runner.stop()
    held = outcome == "held"
    return {
        "scenario": plan.name,
        "description": plan.description,
        "started": started,
        "seconds": round(time.time() - started, 3),
        "held": held,
        "outcome": outcome,
        "faults": run.faults,
        "load": [{"url": r.url, "sent": r.sent, "statuses": r.statuses} for r in loads],
        "windows": run.windows,
    }


def _phases(run: _Run) -> str:
    plan = run.plan
    if not run.measure("before", plan.window):
        return "the steady state did not hold before any fault; nothing was injected"
    run.inject()
    held = True
    deadline = time.monotonic() + MAX_RUN
    # At least one window, so that a one-shot fault (kill) is measured too.
    while True:
        held &= run.measure("during", plan.window)
        if not run.active() or time.monotonic() > deadline:
            break
    run.remove_left()
    time.sleep(plan.settle)
    after = run.measure("after", plan.window)
    if held and after:
        return "held"
    return "the steady state broke " + ("during the faults" if not held else "after the faults")


# -- the terminal report ------------------------------------------------------------


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False, highlight=False)
    table = Table(title=f"scenario: {report['scenario']}")
    for column in ("phase", "service", "requests", "errors", "p99 ms", "verdict"):
        table.add_column(column)
    for w in report["windows"]:
        verdict = "[green]held[/]" if w["held"] else "[red]" + "; ".join(w["broke"]) + "[/]"
        p99 = "-" if w["p99_ms"] is None else f"{w['p99_ms']:g}"
        table.add_row(w["phase"], w["service"], str(w["requests"]),
                      f"{w['error_rate']:.1%}", p99, verdict)
    console.print(table)
    for load in report["load"]:
        console.print(f"load {load['url']}: {load['sent']} sent, {load['statuses']}")
    colour = "green" if report["held"] else "red"
    console.print(f"[{colour}]{report['outcome']}[/] ({report['seconds']:g}s)")


