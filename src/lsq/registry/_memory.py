"""The in-process registry: the runtime writes it, everything else reads it."""

from __future__ import annotations

from collections.abc import Callable

from lsq.registry._model import Change, Instance

Watcher = Callable[[Change], None]


class MemoryRegistry:
    """Instances by id, plus synchronous watchers called on every change.

    Writers call `publish(instance)` after mutating an `Instance` they own;
    watchers must be quick (they run on the event loop) and must not raise.
    """

    def __init__(self) -> None:
        self._instances: dict[str, Instance] = {}
        self._watchers: list[Watcher] = []

    def publish(self, instance: Instance) -> None:
        self._instances[instance.id] = instance
        self._notify(Change("upsert", instance.snapshot()))

    def remove(self, instance_id: str) -> None:
        instance = self._instances.pop(instance_id, None)
        if instance is not None:
            self._notify(Change("remove", instance.snapshot()))

    def instances(self, service: str | None = None) -> list[Instance]:
        return [
            i for i in self._instances.values() if service is None or i.service == service
        ]

    def routable(self, service: str) -> list[Instance]:
        return [i for i in self.instances(service) if i.routable]

    def watch(self, watcher: Watcher) -> Callable[[], None]:
        """Call `watcher` on every change; returns the function that stops it."""
        self._watchers.append(watcher)
        return lambda: self._watchers.remove(watcher)

    def _notify(self, change: Change) -> None:
        for watcher in list(self._watchers):
            watcher(change)
