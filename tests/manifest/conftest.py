"""Helpers: write an app folder into tmp_path and load it."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from lsq.errors import ManifestError
from lsq.manifest import AppConfig, load

Write = Callable[..., Path]
Load = Callable[..., AppConfig]


# Program names the test manifests run. The loader checks that a command's
# program exists, so each gets a real (do-nothing) executable on PATH.
FAKE_PROGRAMS = (
    "run",
    "serve",
    "api",
    "db",
    "cache",
    "job",
    "tool",
    "a",
    "b",
    "c",
    "w",
)


@pytest.fixture(autouse=True)
def fake_programs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A folder of executables named FAKE_PROGRAMS, put first on PATH."""
    folder = tmp_path_factory.mktemp("bin")
    for name in FAKE_PROGRAMS:
        program = folder / name
        program.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
        program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    return folder


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
def load_app(write: Write, monkeypatch: pytest.MonkeyPatch) -> Load:
    """load_app(manifest_text, environ={}, files={name: text}, overrides=[names]).

    Every manifest is also loaded `frozen`, as a first `lsq up -d` loads it:
    the compiled schema (`lsq.manifest._core`) must accept exactly what the
    models accept and give the same app, and a refused one the same error."""
    from schemacheck import assert_as_the_models

    from lsq.manifest import _core

    answers: list[object] = []
    compiled = _core.validate

    def validate(data: object) -> object:
        answer = compiled(data)
        assert_as_the_models(data, answer)
        answers.append(answer)
        return answer

    monkeypatch.setattr(_core, "validate", validate)

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
        answers.clear()
        try:
            app = load(path, environ=environ or {}, overrides=extra)
        except ManifestError as exc:
            with pytest.raises(ManifestError) as frozen_error:
                load(path, environ=environ or {}, overrides=extra, frozen=True)
            assert str(frozen_error.value) == str(exc)
            raise
        assert not answers, "a plain load used the compiled schema"
        frozen = load(path, environ=environ or {}, overrides=extra, frozen=True)
        assert answers and answers[0] is not None, "the compiled schema refused a valid manifest"
        assert frozen == app.frozen()
        return app

    return _load


@pytest.fixture(autouse=True)
def both_yaml_parsers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every manifest these tests load is also read by the pure Python
    composer; the C one (used when installed) must give the same tree, or
    the same error."""
    from yamlcheck import same_tree

    from lsq.errors import ManifestError
    from lsq.manifest import _load, _yaml

    def parse(text: str, file: str, *, override: bool = False) -> _yaml.Node | None:
        try:
            pure = _yaml.parse(text, file, override=override, pure=True)
        except ManifestError as exc:
            with pytest.raises(ManifestError) as raised:
                _yaml.parse(text, file, override=override)
            assert str(raised.value) == str(exc)
            raise
        either = _yaml.parse(text, file, override=override)
        assert same_tree(either, pure)
        return either

    monkeypatch.setattr(_load, "parse", parse)

