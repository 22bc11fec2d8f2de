"""A pytest fixture for faults on a running LSQ app.

Enable it in a `conftest.py`::

    pytest_plugins = ["lsq.chaos.pytest_plugin"]

then::

    def test_orders_survive_slow_notifications(chaos):
        with chaos.latency("notifications", ms=300):
            ...

The app is found from `--lsq-app DIR`, else LSQ_APP_DIR, else the nearest
folder with `.lsq/runtime.json` or `lsq.yaml` up from the working folder. At
the end of each test every fault it added and did not remove is removed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lsq.chaos._helper import Chaos, FaultHandle
from lsq.errors import RuntimeNotRunning


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--lsq-app",
        default=None,
        help="Folder of the running LSQ app the `chaos` fixture acts on.",
    )


@pytest.fixture
def chaos(request: pytest.FixtureRequest) -> Iterator[Chaos]:
    """Faults on the running app; the ones a test leaves are removed after it."""
    try:
        client = Chaos(request.config.getoption("--lsq-app"))
    except RuntimeNotRunning as exc:
        pytest.fail(f"the chaos fixture needs a running app: {exc}", pytrace=False)
    try:
        yield client
    finally:
        try:
            for fault_id in client.added:
                FaultHandle(client, {"id": fault_id}).remove()
        except RuntimeNotRunning:
            pass  # the app is gone, and its faults with it
        finally:
            client.close()
