"""Fixtures for the runtime tests; the helpers live in `rthelpers`."""

import sys
from pathlib import Path

# The runtime tests share one helper module that sits beside them.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rthelpers import app  # noqa: F401
