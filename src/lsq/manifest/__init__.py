"""The `lsq.yaml` manifest: schema, loading with positions, interpolation, `.env`."""

from lsq.manifest._config import AppConfig, Origin
from lsq.manifest._load import find_manifest, load
from lsq.manifest._render import render_config
from lsq.manifest._schema import Health, Manifest, Restart, Route, Service, env_name

__all__ = [
    "AppConfig",
    "Health",
    "Manifest",
    "Origin",
    "Restart",
    "Route",
    "Service",
    "env_name",
    "find_manifest",
    "load",
    "render_config",
]
