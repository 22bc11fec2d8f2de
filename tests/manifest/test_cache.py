"""The checked-manifest cache (`.lsq/manifest.cache`): a hit only while every
file the manifest was made from, and the environment variables it read, are
as they were."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest


from lsq.manifest import load
from lsq.manifest._cache import CACHE_NAME, lookup, save

Write = Callable[..., Path]

MANIFEST = """
    services:
      api:
        command: api
        env_file: api.env
        env:
          GREETING: ${GREETING:-hello}
"""


@pytest.fixture
def cached(write: Write, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An app whose manifest is written; each test loads and caches it itself
    (pytest changes PYTEST_CURRENT_TEST, part of the environment, between a
    fixture and its test). Returns the manifest."""
    monkeypatch.delenv("GREETING", raising=False)
    write("api.env", "TOKEN=one\n")
    return write("lsq.yaml", MANIFEST)


def cache(path: Path) -> Path:
    save(load(path), path.parent / ".lsq")
    return path.parent / ".lsq"


def test_a_cached_app_comes_back_equal_and_frozen(cached: Path) -> None:
    hit = lookup(cached, cache(cached))
    assert hit is not None
    app = hit.app()
    # Frozen (lsq.manifest._frozen): the runtime reads it without pydantic.
    assert app == load(cached).frozen()
    assert type(app.manifest).__module__ == "lsq.manifest._frozen"
    assert app.env["api"] == {"TOKEN": "one", "GREETING": "hello"}
    mode = stat.S_IMODE((cached.parent / ".lsq" / CACHE_NAME).stat().st_mode)
    assert mode == 0o600  # it holds the services' environment


def test_an_edited_manifest_misses(cached: Path, write: Write) -> None:
    assert lookup(cached, cache(cached)) is not None
    write("lsq.yaml", MANIFEST.replace("hello", "hi"))
    assert lookup(cached, cached.parent / ".lsq") is None


def test_an_edited_env_file_misses(cached: Path, write: Write) -> None:
    assert lookup(cached, cache(cached)) is not None
    write("api.env", "TOKEN=two\n")
    assert lookup(cached, cached.parent / ".lsq") is None


def test_a_removed_env_file_misses(cached: Path) -> None:
    assert lookup(cached, cache(cached)) is not None
    (cached.parent / "api.env").unlink()
    assert lookup(cached, cached.parent / ".lsq") is None


def test_a_changed_environment_misses(cached: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ${GREETING:-hello} would now interpolate otherwise, and every service
    # inherits the environment as well.
    assert lookup(cached, cache(cached)) is not None
    monkeypatch.setenv("GREETING", "hey")
    assert lookup(cached, cached.parent / ".lsq") is None
    monkeypatch.delenv("GREETING")
    assert lookup(cached, cached.parent / ".lsq") is not None


def test_variables_loading_did_not_read_may_change(
    cached: Path, write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A shell changes OLDPWD at every `cd`, a terminal sets its own TERM: a
    # repeat start still comes from the cache. The variables `${...}` reads
    # in the manifest and in `.env` files (set or not), and PATH, still count.
    write("api.env", "TOKEN=${TOKEN_SOURCE:-one}\n")
    state = cache(cached)
    assert set(load(cached).environ_read) == {"GREETING", "TOKEN_SOURCE", "PATH"}
    monkeypatch.setenv("OLDPWD", "/somewhere/else")
    monkeypatch.setenv("LSQ_UNRELATED", "1")
    assert lookup(cached, state) is not None
    monkeypatch.setenv("TOKEN_SOURCE", "two")
    assert lookup(cached, state) is None
    monkeypatch.delenv("TOKEN_SOURCE")
    assert lookup(cached, state) is not None
    monkeypatch.setenv("PATH", os.environ["PATH"] + os.pathsep + "/nowhere")
    assert lookup(cached, state) is None


def test_a_cache_without_the_names_it_read_misses(cached: Path) -> None:
    # A cache an older LSQ wrote keyed the whole environment: not trusted.
    state = cache(cached)
    path = state / CACHE_NAME
    head, _, rest = path.read_bytes().partition(b"\n")
    head = head.replace(b'"environ_read"', b'"environ_names_of_old"')
    path.write_bytes(head + b"\n" + rest)
    assert lookup(cached, state) is None


def test_another_manifest_path_misses(cached: Path, write: Write) -> None:
    cache(cached)
    other = write("other/lsq.yaml", MANIFEST)
    assert lookup(other, cached.parent / ".lsq") is None


def test_an_app_with_warnings_is_not_cached(cached: Path, write: Write) -> None:
    cache(cached)
    path = write("lsq.yaml", MANIFEST.replace("${GREETING:-hello}", "${UNSET_VARIABLE_X}"))
    app = load(path)
    assert app.warnings
    save(app, path.parent / ".lsq")
    assert not (path.parent / ".lsq" / CACHE_NAME).exists()
    assert lookup(path, path.parent / ".lsq") is None


def test_overrides_are_never_served_from_the_cache(cached: Path, write: Write) -> None:
    extra = write("more.yaml", "services:\n  api:\n    env:\n      MORE: '1'\n")
    app = load(cached, overrides=[extra])
    save(app, cached.parent / ".lsq")
    assert lookup(cached, cached.parent / ".lsq") is None


def test_a_damaged_payload_falls_back_to_the_manifest(cached: Path) -> None:
    cache(cached)
    file = cached.parent / ".lsq" / CACHE_NAME
    header, _, payload = file.read_bytes().partition(b"\n")
    file.write_bytes(header + b"\n" + payload[: len(payload) // 2])
    hit = lookup(cached, cached.parent / ".lsq")
    assert hit is not None
    assert hit.app() == load(cached)


def test_a_damaged_header_misses(cached: Path) -> None:
    cache(cached)
    assert lookup(cached, cached.parent / ".lsq") is not None
    file = cached.parent / ".lsq" / CACHE_NAME
    file.write_bytes(b"{not json\n" + file.read_bytes())
    assert lookup(cached, cached.parent / ".lsq") is None


RICH = """
    services:
      api:
        command: [api, --port, "${PORT}"]
        env: {A: "1"}
        replicas: 2
        health: {http: /health, interval: 2s, timeout: 500ms}
        depends_on: {db: healthy}
        restart: {policy: always, backoff: 0.5s, max_restarts: 5}
        routes:
          - prefix: /api
            strip: true
            policy: {timeout: 2s, retries: {attempts: 3}}
        policy:
          timeout: 3s
          retries: {attempts: 2, budget_per_s: 10}
          breaker: {}
        release: {strategy: canary, steps: [10, 50, 100]}
      db:
        command: db
        data: sqlite
        health: {tcp: true}
      pay:
        external: http://127.0.0.1:9/
"""


def test_plain_gives_what_model_dump_gives(write: Write) -> None:
    # Release versions are identified by a hash of `plain(service)`, which
    # older runtimes computed with model_dump(mode="json"): both must agree.
    from lsq.manifest._frozen import plain

    app = load(write("lsq.yaml", RICH))
    for svc in app.services.values():
        assert plain(svc, exclude=frozenset({"release"})) == svc.model_dump(
            mode="json", exclude={"release"}
        )
        for policy in [svc.policy, *(r.policy for r in svc.routes)]:
            if policy is not None:
                assert plain(policy, exclude_none=True) == policy.model_dump(exclude_none=True)


def test_a_repointed_env_file_symlink_misses(write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREETING", raising=False)
    write("dev.env", "TOKEN=dev\n")
    write("prod.env", "TOKEN=prod\n")
    path = write("lsq.yaml", MANIFEST)
    link = path.parent / "api.env"
    link.symlink_to("dev.env")
    state = cache(path)
    assert lookup(path, state) is not None
    link.unlink()
    link.symlink_to("prod.env")
    assert lookup(path, state) is None
    assert load(path).env["api"]["TOKEN"] == "prod"


def test_a_program_gone_or_no_longer_executable_misses(write: Write) -> None:
    # The full load warns about it (with its place); the cache must not hide that.
    program = write("run.sh", "#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    path = write("lsq.yaml", "services:\n  web:\n    command: [./run.sh]\n")
    state = cache(path)
    assert lookup(path, state) is not None
    program.chmod(0o644)
    assert lookup(path, state) is None
    assert any("not executable" in w for w in load(path).warnings)
    program.chmod(0o755)
    assert lookup(path, state) is not None
    program.unlink()
    assert lookup(path, state) is None
