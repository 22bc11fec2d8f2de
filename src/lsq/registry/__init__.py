"""Services and their instances: the model and its backends."""

from lsq.registry._memory import MemoryRegistry
from lsq.registry._model import Change, Instance, State

__all__ = ["Change", "Instance", "MemoryRegistry", "State"]
