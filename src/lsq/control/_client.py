"""The control API client the CLI uses: finds the runtime from `.lsq/`."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from lsq.errors import ControlError, RuntimeNotRunning
from lsq.runtime import RuntimeInfo, read_runtime_info


class ControlClient:
    def __init__(self, state_dir: Path, *, timeout: float = 30.0) -> None:
        info = read_runtime_info(state_dir)
        if info is None:
            raise RuntimeNotRunning(
                f"no runtime is running for the app in {str(state_dir.parent)!r}; start it with `lsq up -d`"
            )
        self.info: RuntimeInfo = info
        token = (state_dir / "token").read_text().strip()
        self._http = httpx.Client(
            base_url=f"http://127.0.0.1:{info.port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    def get(self, path: str, **params: object) -> object:
        return self._call("GET", path, params=params)

    def post(self, path: str, body: object | None = None) -> object:
        return self._call("POST", path, json=body or {})

    def _call(self, method: str, path: str, **kwargs: object) -> object:
        try:
            resp = self._http.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise RuntimeNotRunning(f"the runtime (pid {self.info.pid}) does not answer: {exc}") from exc
        try:
            data = resp.json()
        except json.JSONDecodeError:
            data = {"error": resp.text}
        if resp.status_code >= 400:
            raise ControlError(str(data.get("error", data)), status=resp.status_code)
        return data

    def close(self) -> None:
        self._http.close()
