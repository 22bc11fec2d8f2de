"""The service's package; `python -m app` runs it."""
