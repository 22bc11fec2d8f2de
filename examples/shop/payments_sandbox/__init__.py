"""A stand-in for a third-party payment API."""
