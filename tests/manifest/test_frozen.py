"""The frozen form of a validated manifest (`lsq.manifest._frozen`): what a
runtime reads instead of the pydantic models."""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys
from collections.abc import Callable

import pytest

from lsq.manifest import AppConfig, _schema
from lsq.manifest._frozen import FIELDS, freeze, is_model, plain

Load = Callable[..., AppConfig]

RICH = """
services:
  api:
    command: [run, --port, "${PORT}"]
    env: {MODE: "yes", RATIO: "1.10"}
    replicas: 2
    health: {http: /health, interval: 2s}
    restart: {policy: always, backoff: 500ms}
    depends_on: {db: healthy}
    routes:
      - prefix: /v1
        strip: true
        policy: {timeout: 3s, retries: {attempts: 2}}
    policy: {outlier: {consecutive_failures: 4}, breaker: {enabled: false}}
    release:
      strategy: canary
      steps: [10, 50, 100]
      smoke: [{path: /health}]
      analysis: {min_requests: 5}
  db:
    command: serve
    health: {tcp: true}
gateway:
  workers: 2
"""


def _models() -> dict[str, type]:
    return {
        name: cls for name, cls in vars(_schema).items()
        if inspect.isclass(cls) and issubclass(cls, _schema._Model) and cls is not _schema._Model
    }


def test_every_schema_model_has_a_frozen_form_with_its_fields() -> None:
    # A field added to the schema and not here would be missing in the runtime.
    assert {n: tuple(c.model_fields) for n, c in _models().items()} == FIELDS


def test_a_frozen_app_reads_and_dumps_as_the_validated_one(load_app: Load) -> None:
    app = load_app(RICH)
    frozen = app.frozen()
    assert frozen.manifest.services["api"].routes[0].policy.retries.attempts == 2
    assert frozen.services["api"].health.interval == 2.0
    assert frozen.manifest.gateway.workers == 2
    assert plain(frozen.manifest) == plain(app.manifest) == app.manifest.model_dump()
    assert frozen.dependency_order() == app.dependency_order()
    assert frozen.env == app.env and frozen.origins == app.origins
    assert type(frozen.services["api"]).__name__ == "Service"
    assert is_model(frozen.services["api"]) and is_model(app.services["api"])
    assert not is_model({"timeout": 3.0})


def test_a_frozen_model_is_read_only_and_compares_by_value(load_app: Load) -> None:
    frozen = load_app(RICH).frozen()
    api = frozen.services["api"]
    with pytest.raises(AttributeError, match="read-only"):
        api.replicas = 3  # type: ignore[misc]
    again = pickle.loads(pickle.dumps(api))
    assert again == api and again is not api
    assert api != frozen.services["db"]
    assert hash(frozen.services["db"].health) == hash(freeze(frozen.services["db"].health))
    assert "replicas=2" in repr(api)


def test_a_frozen_app_unpickles_without_pydantic(load_app: Load) -> None:
    # What the runtime does with the app the CLI hands it, in a fresh
    # interpreter: it must find every value without importing pydantic.
    data = pickle.dumps(load_app(RICH).frozen(), pickle.HIGHEST_PROTOCOL)
    code = (
        "import pickle, sys; app = pickle.loads(sys.stdin.buffer.read()); "
        "print(app.services['api'].release.analysis.min_requests, "
        "app.services['api'].routes[0].prefix, "
        "sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core')))"
    )
    seen = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True,
                          timeout=60)
    assert seen.stdout.decode().split() == ["5", "/v1", "[]"], seen.stderr.decode()



def test_freezing_a_frozen_app_gives_it_back(load_app: Load) -> None:
    # The CLI freezes once, for the cache and the runtime alike.
    frozen = load_app(RICH).frozen()
    assert frozen.frozen() is frozen
