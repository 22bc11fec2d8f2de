"""The runtime: processes, health, restarts, logs, data and state of one app."""

from lsq.runtime._logs import LogHub, Printer, read_logs
from lsq.runtime._runtime import RuntimeInfo, Runtime, read_runtime_info, state_dir_for
from lsq.runtime._supervisor import Supervisor, backoff_delay

__all__ = [
    "LogHub",
    "Printer",
    "Runtime",
    "RuntimeInfo",
    "Supervisor",
    "backoff_delay",
    "read_logs",
    "read_runtime_info",
    "state_dir_for",
]
