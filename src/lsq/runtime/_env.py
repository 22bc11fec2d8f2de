"""The environment of a service's instance (`service_env`), in a module of
its own: a first `lsq up -d` computes it in the CLI, before the runtime has
loaded, for the replicas it starts early (`first_plan`; the runtime starts
them with `lsq.runtime._warm.begin_first`)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from lsq.manifest._names import env_name  # not the schema: a warm start has not loaded it

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


OTLP_PLACEHOLDER = "lsq:otlp-endpoint"
"""Stands for the runtime's OTLP endpoint in a first start's plan: the CLI
cannot know the control port the runtime will bind."""


def first_plan(app: AppConfig) -> dict[str, Any]:
    """For a first `lsq up -d`, in the CLI once the manifest is checked: the
    replicas the runtime may start before it has loaded, each with its
    command, folder and environment as the supervisor will compute them
    (as `lsq.runtime._warm.record` writes them, but for `OTLP_PLACEHOLDER`)."""
    import importlib.util

    # The supervisor adds these for the dashboard's trace receiver, when the
    # dashboard is installed (lsq.control._server._mount_dashboard).
    traced = importlib.util.find_spec("lsq.dashboard") is not None
    base = dict(os.environ)
    starts: list[dict[str, Any]] = []
    for name in app.dependency_order():
        svc = app.services[name]
        if svc.external or svc.depends_on or svc.data or svc.port is not None or not svc.command:
            continue
        defaults = {"OTEL_EXPORTER_OTLP_ENDPOINT": OTLP_PLACEHOLDER, "OTEL_SERVICE_NAME": name}
        for index in range(svc.replicas):
            ident = f"{name}-{index}"
            env = service_env(app, name, instance=ident, port=0, addresses=None,  # type: ignore[arg-type]
                              data_env={}, defaults=defaults if traced else {}, base=base)
            starts.append({
                "id": ident,
                "command": svc.command,
                "cwd": str(app.cwd(name)),
                "env": {k: v for k, v in env.items() if k != "PORT" and base.get(k) != v},
            })
    return {"state": str(app.root / ".lsq"), "starts": starts}
