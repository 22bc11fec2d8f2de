"""Polling for the tests: wait until a condition holds, or fail naming it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


def wait_for(check: Callable[[], Any], timeout: float, what: str, *, every: float = 0.05) -> Any:
    """Call `check` until it returns something truthy and return that; fail the
    test after `timeout` seconds, naming `what` was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)
