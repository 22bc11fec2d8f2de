"""The control API client the CLI uses: finds the runtime from `.lsq/`.

Written on the standard library's `http.client` rather than httpx: every CLI
command makes one or two local requests, and importing httpx would cost more
than the whole command otherwise takes.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from urllib.parse import urlencode

from lsq.errors import BadRequest, ControlError, RuntimeNotRunning
from lsq.runtime import RuntimeInfo, read_runtime_info
from lsq.runtime._info import process_state


class ControlClient:
    def __init__(self, state_dir: Path, *, timeout: float | None = 30.0) -> None:
        info = read_runtime_info(state_dir)
        if info is None:
            raise RuntimeNotRunning(
                f"no runtime is running for the app in {str(state_dir.parent)!r}; start it with `lsq up -d`"
            )
        self.info: RuntimeInfo = info
        self._token = (state_dir / "token").read_text().strip()
        self._timeout = timeout

    def get(self, path: str, **params: object) -> object:
        query = urlencode({k: v for k, v in params.items() if v is not None})
        return self._call("GET", f"{path}?{query}" if query else path, None)

    def post(self, path: str, body: object | None = None) -> object:
        return self._call("POST", path, json.dumps(body or {}).encode())

    def _call(self, method: str, path: str, body: bytes | None) -> object:
        if _stopped(self.info.pid):  # it would take the request, and act on it once resumed
            raise self._stopped_error()
        conn = http.client.HTTPConnection("127.0.0.1", self.info.port, timeout=self._timeout)
        headers = {"Authorization": f"Bearer {self._token}", "Host": f"127.0.0.1:{self.info.port}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            if _stopped(self.info.pid):
                raise self._stopped_error() from exc
            raise RuntimeNotRunning(f"the runtime (pid {self.info.pid}) does not answer: {exc}") from exc
        finally:
            conn.close()
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {"error": raw.decode("utf-8", "replace")}
        if resp.status >= 400:
            message = data.get("error", data) if isinstance(data, dict) else data
            kind = BadRequest if resp.status in (400, 404) else ControlError
            raise kind(str(message), status=resp.status)
        return data

    def close(self) -> None:
        """Nothing to close: each call uses its own connection."""

    def _stopped_error(self) -> RuntimeNotRunning:
        pid = self.info.pid
        return RuntimeNotRunning(
            f"the runtime (pid {pid}) is stopped (SIGSTOP or Ctrl-Z), so it cannot answer; "
            f"resume it with `kill -CONT {pid}`"
        )


def _stopped(pid: int) -> bool:
    return process_state(pid) == "T"  # stopped by a signal
