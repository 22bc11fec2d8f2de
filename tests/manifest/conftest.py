"""Helpers: write an app folder into tmp_path and load it."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from lsq.manifest import AppConfig, load

Write = Callable[..., Path]
Load = Callable[..., AppConfig]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """write("lsq.yaml", text) -> path; text is dedented."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


@pytest.fixture
def load_app(write: Write) -> Load:
    """load_app(manifest_text, environ={}, files={name: text}, overrides=[names])."""

    def _load(
        text: str,
        *,
        environ: Mapping[str, str] | None = None,
        files: Mapping[str, str] | None = None,
        overrides: tuple[str, ...] = (),
    ) -> AppConfig:
        for name, body in (files or {}).items():
            write(name, body)
        path = write("lsq.yaml", text)
        extra = [path.parent / name for name in overrides]
        return load(path, environ=environ or {}, overrides=extra)

    return _load
