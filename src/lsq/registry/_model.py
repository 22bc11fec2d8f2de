"""What the registry holds: instances of services, their state and health."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class State(str, enum.Enum):
    """Life cycle of one instance (one replica's process)."""

    WAITING = "waiting"  # its dependencies are not ready yet
    STARTING = "starting"  # spawned, health not yet passing
    RUNNING = "running"  # up and (if it has a check) healthy
    UNHEALTHY = "unhealthy"  # up, but the health check is failing
    STOPPING = "stopping"  # stop signal sent
    STOPPED = "stopped"  # stopped on purpose
    EXITED = "exited"  # ended by itself and will not be restarted (completed)
    BACKOFF = "backoff"  # crashed; waiting for the next restart
    FAILED = "failed"  # gave up: max_restarts, bad command, dependency failed


@dataclass
class Instance:
    """One replica. The supervisor owns and mutates it; readers take snapshots."""

    service: str
    index: int
    port: int
    host: str = "127.0.0.1"
    state: State = State.WAITING
    healthy: bool = False
    pid: int | None = None
    restarts: int = 0
    crashes: int = 0  # crashes in a row (reset after a stable uptime)
    last_exit: int | None = None
    started_at: float | None = None
    next_retry: float | None = None
    reason: str = ""
    version: str = ""
    weight: int = 100
    labels: dict[str, str] = field(default_factory=dict)
    # Instances of a release after the first carry the version in their id
    # (`web-v2-0`), so both versions can run side by side during a release.
    tagged: bool = False

    @property
    def id(self) -> str:
        if self.tagged and self.version:
            return f"{self.service}-{self.version}-{self.index}"
        return f"{self.service}-{self.index}"

    @property
    def routable(self) -> bool:
        """May the gateway send it new requests?"""
        return self.state is State.RUNNING and self.healthy

    def snapshot(self) -> dict[str, object]:
        return {
            "id": self.id,
            "service": self.service,
            "index": self.index,
            "host": self.host,
            "port": self.port,
            "pid": self.pid,
            "state": self.state.value,
            "healthy": self.healthy,
            "restarts": self.restarts,
            "crashes": self.crashes,
            "last_exit": self.last_exit,
            "started_at": self.started_at,
            "next_retry": self.next_retry,
            "reason": self.reason,
            "version": self.version,
            "weight": self.weight,
        }


@dataclass(frozen=True)
class Change:
    """One change to the registry, handed to every watcher."""

    kind: str  # "upsert" or "remove"
    instance: dict[str, object]
