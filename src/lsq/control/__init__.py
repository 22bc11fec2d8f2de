"""The runtime's local HTTP API (token, Host and Origin checked) and its client."""

from lsq.control._client import ControlClient
from lsq.control._server import ControlAPI, serve

__all__ = ["ControlAPI", "ControlClient", "serve"]
