"""HTTP-level faults from the routing table (see docs/gateway.md, "Faults").

A worker turns `ServiceEntry.faults` into `Fault` objects once per table
update. Requests of a service with no faults never reach this module. The
peer's pid is looked up only when some active fault has a `source`.
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

KINDS = frozenset(
    {"latency", "abort", "reset", "hang", "bandwidth", "truncate", "partition"}
)


class Fault:
    """One active fault and the requests it matches."""

    __slots__ = (
        "after_bytes",
        "bytes_per_s",
        "expires_at",
        "headers",
        "id",
        "jitter",
        "kind",
        "method",
        "ms",
        "percent",
        "prefix",
        "replica",
        "source",
        "status",
    )

    def __init__(self, data: Mapping[str, Any]) -> None:
        params = data.get("params") or {}
        match = data.get("match") or {}
        self.id = str(data.get("id", ""))
        self.kind = str(data["kind"])
        if self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {sorted(KINDS)}, found {self.kind!r}")
        self.ms = float(params.get("ms", 0.0))
        self.jitter = float(params.get("jitter_ms", 0.0))
        self.status = int(params.get("status", 503))
        self.bytes_per_s = max(1.0, float(params.get("bytes_per_s", 1e9)))
        self.after_bytes = int(params.get("after_bytes", 0))
        self.prefix = str(match.get("prefix") or "").encode() or None
        method = match.get("method")
        self.method = method.upper().encode() if method else None
        self.headers = tuple(
            (("\r\n" + k.lower() + ":").encode(), str(v).encode())
            for k, v in (match.get("headers") or {}).items()
        )
        self.percent = float(match.get("percent", 100.0))
        self.replica = match.get("replica")
        self.source = match.get("source")
        expires = data.get("expires_at")
        self.expires_at = float(expires) if expires is not None else None

    def delay(self) -> float:
        """Seconds of added latency (latency faults)."""
        ms = max(0.0, self.ms + random.uniform(-self.jitter, self.jitter))
        # libuv timers have millisecond resolution on a cached clock and may
        # fire a fraction early; the added 2 ms makes "at least" hold.
        return ms / 1000.0 + 0.002

    def matches_request(self, method: bytes, path: bytes, lower_head: bytes) -> bool:
        """Everything except replica and source, which are checked later."""
        if self.expires_at is not None and time.time() >= self.expires_at:
            return False
        if self.method is not None and method != self.method:
            return False
        if self.prefix is not None and not path.startswith(self.prefix):
            return False
        for name, value in self.headers:
            at = lower_head.find(name)
            if at < 0:
                return False
            end = lower_head.find(b"\r\n", at + 2)
            if lower_head[at + len(name) : end].strip() != value.lower():
                return False
        return self.percent >= 100.0 or random.random() * 100.0 < self.percent


def parse_faults(items: Iterable[Mapping[str, Any]]) -> tuple[Fault, ...]:
    now = time.time()
    faults = (Fault(item) for item in items)
    return tuple(f for f in faults if f.expires_at is None or f.expires_at > now)


# -- who is calling: peer socket -> pid -> service ---------------------------


def peer_pid(peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    """The pid owning the client end of a loopback TCP connection, or None."""
    inode = _socket_inode(peer, local)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) == target:
                    return int(proc.name)
        except OSError:
            continue
    return None


def _socket_inode(peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    want_local = _hex_addr(peer)
    want_remote = _hex_addr(local)
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if fields[1] == want_local and fields[2] == want_remote:
            return int(fields[9])
    return None


def _hex_addr(addr: tuple[str, int]) -> str:
    packed = socket.inet_aton(addr[0])
    return "%08X:%04X" % (int.from_bytes(packed, "little"), addr[1])


def service_of_pid(pid: int | None, pids: Mapping[int, str]) -> str | None:
    """The service whose instance is `pid` or one of its ancestors."""
    for _ in range(32):
        if pid is None or pid <= 1:
            return None
        if pid in pids:
            return pids[pid]
        pid = _parent(pid)
    return None


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])
