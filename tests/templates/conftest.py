"""Fixtures for the template tests; the helpers live in `tplhelpers`."""

import sys
from pathlib import Path

# The suite imports test modules with --import-mode=importlib, which puts no
# test folder on sys.path; the template tests share one helper module.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tplhelpers import app, cache_dir, lsq, service_runner  # noqa: F401
