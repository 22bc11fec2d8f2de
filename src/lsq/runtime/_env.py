"""The environment of a service's instance (`service_env`), in a module of
its own: a first `lsq up -d` computes it in the CLI, before the runtime has
loaded, for the replicas it starts early (`lsq.runtime._warm.first_plan`)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from lsq.manifest._schema import env_name

if TYPE_CHECKING:
    from lsq.manifest import AppConfig
    from lsq.runtime._supervisor import Addresses


def service_env(
    app: AppConfig,
    service: str,
    *,
    instance: str,
    port: int,
    addresses: Addresses,
    data_env: dict[str, str],
    own_env: dict[str, str] | None = None,
    defaults: dict[str, str] | None = None,
    base: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of one instance. Precedence, lowest first: the caller's
    environment, LSQ's defaults (telemetry), `env_file`, `env`, the data store, then what LSQ sets itself
    (PORT, LSQ_*), which always wins (docs/manifest.md). `own_env` replaces
    the manifest's `env_file` and `env` (a release's version of them).
    `base` is a copy of the caller's environment taken once (reading
    `os.environ` decodes every variable on each call)."""
    env = dict(os.environ if base is None else base)
    env.update(defaults or {})
    env.update(app.env.get(service, {}) if own_env is None else own_env)
    env.update(data_env)
    for dep in app.services[service].depends_on:
        env[env_name(dep)] = addresses.service_url(app, dep)
    env.update(
        PORT=str(port),
        LSQ_APP=app.name,
        LSQ_APP_DIR=str(app.root),
        LSQ_SERVICE=service,
        LSQ_INSTANCE=instance,
        PYTHONUNBUFFERED="1",
    )
    return env
