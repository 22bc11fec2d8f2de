"""Ports: free ones from the kernel, and stable ones remembered per app."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from lsq.errors import GatewayError

if TYPE_CHECKING:
    from lsq.manifest import AppConfig


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel considers free right now (it may be taken later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def check_ingress(app: AppConfig) -> None:
    """Raise if the fixed ingress port is taken: without it the gateway
    cannot start, so nothing may (the CLI asks before it forks, the runtime
    again before its services start)."""
    ingress = app.manifest.gateway.ingress_port
    if ingress is not None and port_in_use(ingress):
        who = who_listens(ingress)
        raise GatewayError(
            f"gateway.ingress_port {ingress} is in use{' by ' + who if who else ''}; "
            "stop that process or leave ingress_port out to have one assigned"
        )


def who_listens(port: int) -> str:
    """"pid 123 (nginx)" for the local listener on `port`, or "" if unknown."""
    try:
        import psutil

        for conn in psutil.net_connections("tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == "LISTEN":
                if conn.pid:
                    return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
    except Exception:  # psutil may lack rights or the process may be gone
        return ""
    return ""


STABLE_RANGE = (20000, 29999)
REPLICA_RANGE = (30000, 32767)


def stable_candidate(taken: set[int], span: tuple[int, int] = STABLE_RANGE) -> int:
    """A free port below Linux's default ephemeral range (32768-60999), so
    that outgoing connections never happen to hold it: stable addresses come
    from `STABLE_RANGE`, replicas' private ports from `REPLICA_RANGE`. A
    replica's port taken by a probe's or the gateway's outgoing connection
    between the choice and the replica's bind would fail its start."""
    import random

    for _ in range(200):
        port = random.randint(*span)
        if port not in taken and not port_in_use(port):
            return port
    port = free_port()
    while port in taken:
        port = free_port()
    return port


class StablePorts:
    """Ports assigned to names, kept in a JSON file so they survive restarts."""

    def __init__(self, path: Path) -> None:
        self._path = path
        try:
            self._ports: dict[str, int] = json.loads(path.read_text())
        except (OSError, ValueError):
            self._ports = {}
        self._dirty = False

    def get(self, name: str, *, taken: set[int]) -> int:
        """The port kept for `name`, or a new one; call `save()` after the last."""
        port = self._ports.get(name)
        if port is None or port in taken or port_in_use(port):
            port = stable_candidate(taken)
            self._ports[name] = port
            self._dirty = True
        return port

    def taken(self) -> set[int]:
        """Every port kept for a name."""
        return set(self._ports.values())

    def save(self) -> None:
        """Write the assignments if any changed (once for all services)."""
        if self._dirty:
            self._save()
            self._dirty = False

    def _save(self) -> None:
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._ports, indent=1, sort_keys=True))
        tmp.replace(self._path)
