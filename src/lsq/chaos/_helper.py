"""Faults from Python: a small client of the running app's control API.

    from lsq.chaos import connect

    chaos = connect()                       # LSQ_APP_DIR, or the nearest app folder
    with chaos.latency("orders", ms=300):
        ...                                 # every request to orders is 300 ms slower
    with chaos.abort("payments", status=503, percent=50):
        ...

Each fault method adds the fault at once and returns a `FaultHandle`; used
as a context manager it removes the fault on exit (an already expired or
halted fault is not an error).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from lsq.errors import ControlError, RuntimeNotRunning, UsageError
from lsq.runtime import read_runtime_info


def find_app_dir(start: Path | str | None = None) -> Path:
    """The app folder: `start`, else LSQ_APP_DIR, else the nearest folder up
    from the working folder that has `.lsq/runtime.json` or `lsq.yaml`."""
    if start is not None:
        return Path(start).resolve()
    if os.environ.get("LSQ_APP_DIR"):
        return Path(os.environ["LSQ_APP_DIR"]).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / ".lsq" / "runtime.json").exists() or (folder / "lsq.yaml").exists():
            return folder
    raise RuntimeNotRunning(
        f"no LSQ app found in {str(here)!r} or its parents; "
        "set LSQ_APP_DIR to the app folder or pass it to connect()"
    )


class FaultHandle:
    """One fault that was added; `remove()` or leave the `with` block to end it."""

    def __init__(self, chaos: Chaos, data: Mapping[str, Any]) -> None:
        self._chaos = chaos
        self.data = dict(data)
        self.id = str(data["id"])

    @property
    def replica(self) -> str | None:
        return self.data.get("match", {}).get("replica")  # type: ignore[no-any-return]

    def remove(self) -> None:
        try:
            self._chaos.remove(self.id)
        except ControlError as exc:
            if "no active fault" not in str(exc):
                raise

    def __enter__(self) -> FaultHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()


class Chaos:
    """Faults on one running app, through its control API."""

    def __init__(self, app_dir: Path | str | None = None, *, timeout: float = 30.0) -> None:
        self.app_dir = find_app_dir(app_dir)
        state = self.app_dir / ".lsq"
        info = read_runtime_info(state)
        if info is None:
            raise RuntimeNotRunning(
                f"no runtime is running for the app in {str(self.app_dir)!r}; "
                "start it with `lsq up -d`"
            )
        token = (state / "token").read_text().strip()
        self._http = httpx.Client(
            base_url=f"http://127.0.0.1:{info.port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
        self.added: list[str] = []

    # -- the API ----------------------------------------------------------------------

    def add(self, kind: str, service: str, **spec: Any) -> FaultHandle:
        body = {"kind": kind, "service": service}
        body.update({k: v for k, v in spec.items() if v is not None})
        data = self._call("POST", "/v1/chaos", body)
        self.added.append(str(data["id"]))
        return FaultHandle(self, data)

    def list(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/chaos")  # type: ignore[no-any-return]

    def remove(self, fault_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/chaos/{fault_id}/remove")  # type: ignore[no-any-return]

    def clear(self) -> list[dict[str, Any]]:
        return self._call("POST", "/v1/chaos/clear")  # type: ignore[no-any-return]

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/v1/chaos/stats")  # type: ignore[no-any-return]

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/v1/status")  # type: ignore[no-any-return]

    def address(self, service: str) -> str:
        """The stable address of `service` (through the gateway)."""
        for svc in self.status()["services"]:
            if svc["name"] == service:
                return str(svc["address"])
        raise UsageError(f"no service {service!r} in the running app")

    def close(self) -> None:
        self._http.close()

    # -- one method per kind ------------------------------------------------------------

    def latency(self, service: str, *, ms: float, jitter_ms: float = 0, **scope: Any) -> FaultHandle:
        return self.add("latency", service, ms=ms, jitter_ms=jitter_ms, **scope)

    def abort(self, service: str, *, status: int = 503, **scope: Any) -> FaultHandle:
        return self.add("abort", service, status=status, **scope)

    def reset(self, service: str, **scope: Any) -> FaultHandle:
        return self.add("reset", service, **scope)

    def hang(self, service: str, **scope: Any) -> FaultHandle:
        return self.add("hang", service, **scope)

    def bandwidth(self, service: str, *, bytes_per_s: int, **scope: Any) -> FaultHandle:
        return self.add("bandwidth", service, bytes_per_s=bytes_per_s, **scope)

    def truncate(self, service: str, *, after_bytes: int = 0, **scope: Any) -> FaultHandle:
        return self.add("truncate", service, after_bytes=after_bytes, **scope)

    def partition(self, service: str, *, source: str, **scope: Any) -> FaultHandle:
        return self.add("partition", service, source=source, **scope)

    def kill(self, service: str, *, replica: str | None = None) -> FaultHandle:
        return self.add("kill", service, replica=replica)

    def pause(self, service: str, *, duration: float | str, replica: str | None = None) -> FaultHandle:
        return self.add("pause", service, duration=duration, replica=replica)

    def fail_health(self, service: str, *, replica: str | None = None, **spec: Any) -> FaultHandle:
        return self.add("fail-health", service, replica=replica, **spec)

    # -- plumbing ---------------------------------------------------------------------

    def _call(self, method: str, path: str, body: object | None = None) -> Any:
        try:
            resp = self._http.request(method, path, json=body if method == "POST" else None)
        except httpx.HTTPError as exc:
            raise RuntimeNotRunning(f"the runtime of {str(self.app_dir)!r} does not answer: {exc}") from exc
        try:
            data = resp.json()
        except json.JSONDecodeError:
            data = {"error": resp.text}
        if resp.status_code >= 400:
            message = data.get("error", data) if isinstance(data, dict) else data
            raise ControlError(str(message), status=resp.status_code)
        return data

    def __enter__(self) -> Chaos:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(app_dir: Path | str | None = None) -> Chaos:
    """A `Chaos` for the running app in `app_dir` (see `find_app_dir`)."""
    return Chaos(app_dir)
