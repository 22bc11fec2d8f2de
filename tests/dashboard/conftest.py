"""Fixtures for these tests live in dashboard_helpers.py, which the test modules
import by that unique name (every test folder has a conftest)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dashboard_helpers import *  # noqa: E402,F403
