"""The runtime's local HTTP API (token, Host and Origin checked) and its client."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lsq.control._client import ControlClient
    from lsq.control._server import ControlAPI, serve

__all__ = ["ControlAPI", "ControlClient", "serve"]


def __getattr__(name: str) -> Any:
    # The CLI needs only the client and the runtime only the server; importing
    # each on demand keeps httpx out of the runtime and the runtime out of `lsq ps`.
    if name == "ControlClient":
        from lsq.control._client import ControlClient

        return ControlClient
    if name in ("ControlAPI", "serve"):
        from lsq.control import _server

        return getattr(_server, name)
    raise AttributeError(name)
