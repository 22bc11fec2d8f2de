"""Fault injection: faults on the gateway's paths and on service processes,
scenarios that check a steady state around them, and helpers for tests
(see docs/chaos.md)."""

from lsq.chaos._api import mount
from lsq.chaos._controller import ChaosController
from lsq.chaos._helper import Chaos, FaultHandle, connect, find_app_dir
from lsq.chaos._model import HTTP_KINDS, KINDS, PROCESS_KINDS, Fault, Halt, parse_fault
from lsq.chaos._scenario import Scenario, load_scenario, print_report, run_scenario

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
