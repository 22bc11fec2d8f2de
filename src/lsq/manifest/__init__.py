"""The `lsq.yaml` manifest: schema, loading with positions, interpolation, `.env`."""

from typing import TYPE_CHECKING

from lsq._lazy import lazy_exports

from lsq.manifest._find import find_manifest

if TYPE_CHECKING:
    from lsq.manifest._config import AppConfig, Origin
    from lsq.manifest._load import load
    from lsq.manifest._render import render_config
    from lsq.manifest._names import env_name
    from lsq.manifest._schema import Health, Manifest, Restart, Route, Service

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

_HOMES = {
    "AppConfig": "_config",
    "Origin": "_config",
    "load": "_load",
    "render_config": "_render",
    "Health": "_schema",
    "Manifest": "_schema",
    "Restart": "_schema",
    "Route": "_schema",
    "Service": "_schema",
    "env_name": "_names",
}


# Building the pydantic schema takes a tenth of a second; commands that
# only look for the app's folder should not pay for it.
__getattr__ = lazy_exports("lsq.manifest", _HOMES)
