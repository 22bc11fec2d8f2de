"""Fixtures for the chaos tests; the helpers live in `chelpers`."""

import sys
from pathlib import Path

# The chaos tests share one helper module that sits beside them.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
from chelpers import App, start_app  # noqa: E402


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    yield from start_app(tmp_path_factory.mktemp("chaosapp"))


@pytest.fixture
def clean(app: App) -> Iterator[App]:
    """The app, with every fault removed after the test."""
    try:
        yield app
    finally:
        app.lsq("chaos", "rm", "--all")
