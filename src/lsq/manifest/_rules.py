"""The schema's own checks, as plain functions that need no pydantic.

The models in `lsq.manifest._schema` attach these as their validators, and
the compiled form of the schema (`lsq.manifest._core_schema`, made from the
models by `lsq.manifest._compile`) calls the same functions, so a manifest
is checked by one set of rules either way. Those that take a model read
its fields only, which a frozen model (`lsq.manifest._frozen`) has too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from lsq.manifest._frozen import M

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
MAX_REPLICAS = 256  # of one service, in the manifest and in `lsq scale`


def one_health_kind(health: M) -> M:
    """A health check is exactly one of http, tcp or command."""
    check: Any = health
    kinds = [check.http is not None, check.tcp, check.command is not None]
    if sum(kinds) != 1:
        raise ValueError("set exactly one of http, tcp or command")
    if check.http is not None and not check.http.startswith("/"):
        raise ValueError(f"http must be a path starting with '/', found {check.http!r}")
    return health


def command_or_external(service: M) -> M:
    """A service runs a command or names an external URL, not both."""
    svc: Any = service
    if svc.external is None and svc.command is None:
        raise ValueError("set command (what to run) or external (a URL)")
    if svc.external is not None and svc.command is not None:
        raise ValueError("set either command or external, not both")
    if svc.external is not None and not re.match(r"^https?://", svc.external):
        raise ValueError(f"external must be an http(s) URL, found {svc.external!r}")
    return service


def restart_shorthand(value: object) -> object:
    """`restart: always` is the short form of `restart: {policy: always}`."""
    if isinstance(value, str):
        return {"policy": value}
    return value


def depends_shorthand(value: object) -> object:
    """`depends_on: [db]` means: wait for db to be healthy (or started, if it
    has no health check; the loader resolves that default)."""
    if isinstance(value, list):
        for name in value:
            if isinstance(name, list | dict):  # not a key of the mapping it becomes
                # ValueError, as pydantic reports only that one as invalid input.
                raise ValueError(f"expected a service name, found {name!r}")  # noqa: TRY004
        return {name: None for name in value}
    return value


def one_or_many(value: object) -> object:
    """`env_file: .env` is the short form of `env_file: [.env]`."""
    return [value] if isinstance(value, str) else value


def _starts_with_slash(field: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{field} must start with '/', found {value!r}")
        return value

    # Named as the module names it: the compiled schema imports it by name.
    check.__name__ = check.__qualname__ = f"{field}_slash"
    return check


prefix_slash = _starts_with_slash("prefix")  # a route's prefix
path_slash = _starts_with_slash("path")  # a smoke request's path


def rising_steps(value: list[int]) -> list[int]:
    """Canary steps rise within 1..100 and end at 100 (added if left out)."""
    if not value or any(not 0 < v <= 100 for v in value) or value != sorted(set(value)):
        raise ValueError(f"steps must rise within 1..100, such as [5, 25, 100], found {value}")
    return value if value[-1] == 100 else [*value, 100]


def service_names(value: dict[str, M]) -> dict[str, M]:
    for name in value:
        if not re.match(NAME_PATTERN, name):
            raise ValueError(
                f"service name {name!r} must be lowercase letters, digits, '.', '_' or '-'"
            )
    return value
