"""Fixtures for the template tests; the helpers live in `tplhelpers`."""

from tplhelpers import app, cache_dir, lsq, service_runner  # noqa: F401
