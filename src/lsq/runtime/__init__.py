"""The runtime: processes, health, restarts, logs, data and state of one app."""

from typing import TYPE_CHECKING

from lsq._lazy import lazy_exports

from lsq.runtime._info import RuntimeInfo, read_runtime_info, state_dir_for

if TYPE_CHECKING:
    from lsq.runtime._logs import LogHub, Printer, read_logs
    from lsq.runtime._runtime import Runtime
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

_HOMES = {
    "LogHub": "_logs",
    "Printer": "_logs",
    "read_logs": "_logs",
    "Runtime": "_runtime",
    "Supervisor": "_supervisor",
    "backoff_delay": "_supervisor",
}


# `lsq ps` needs only the runtime's info file, not the supervisor.
__getattr__ = lazy_exports("lsq.runtime", _HOMES)
