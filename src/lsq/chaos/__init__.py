"""Fault injection: faults on the gateway's paths and on service processes,
scenarios that check a steady state around them, and helpers for tests
(see docs/chaos.md)."""

from lsq._lazy import lazy_exports

from lsq.chaos._api import mount
from lsq.chaos._controller import ChaosController
from lsq.chaos._model import HTTP_KINDS, KINDS, PROCESS_KINDS, Fault, Halt, parse_fault

_LAZY = {
    "Chaos": "_helper", "FaultHandle": "_helper", "connect": "_helper",
    "find_app_dir": "_helper", "Scenario": "_scenario", "load_scenario": "_scenario",
    "print_report": "_scenario", "run_scenario": "_scenario",
}


# The helper and the scenario runner are client-side (httpx, rich); the
# runtime imports this package for the controller only.
__getattr__ = lazy_exports("lsq.chaos", _LAZY)

__all__ = [
    "HTTP_KINDS",
    "KINDS",
    "PROCESS_KINDS",
    "Chaos",
    "ChaosController",
    "Fault",
    "FaultHandle",
    "Halt",
    "Scenario",
    "connect",
    "find_app_dir",
    "load_scenario",
    "mount",
    "parse_fault",
    "print_report",
    "run_scenario",
]
