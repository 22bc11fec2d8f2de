"""The compiled schema (`lsq.manifest._core`) against the models it is made
from: the same verdict and the same frozen manifest for every input."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pydantic
import pydantic_core
import pytest
from schemacheck import assert_as_the_models

import lsq.manifest
from lsq.manifest import _compile, _core, _core_schema, _load, _rules, load

WEB = {"command": "run"}

EVERYTHING: dict[str, Any] = {
    "name": "shop",
    "services": {
        "web": {
            "command": ["run", "--port", "${PORT}"],
            "cwd": "web",
            "env": {"A": "1"},
            "env_file": ".env",
            "port": 8001,
            "replicas": 2,
            "health": {"http": "/health", "interval": "2s", "timeout": "500ms",
                       "start_period": 1, "failure_threshold": 2, "success_threshold": 2},
            "depends_on": {"db": "healthy", "job": None},
            "restart": {"policy": "always", "backoff": "1s", "backoff_max": "1m",
                        "max_restarts": 3, "reset_after": "1h"},
            "startup_timeout": "30s",
            "stop_signal": "SIGINT",
            "stop_timeout": 2.5,
            "data": "sqlite",
            "routes": [{"prefix": "/api", "strip": False,
                        "policy": {"timeout": "3s", "retries": {"attempts": 0}}}],
            "policy": {"connect_timeout": "1s", "try_timeout": "2s", "timeout": "5s",
                       "retries": {"attempts": 2, "budget_ratio": 0.2, "budget_per_s": 5,
                                   "backoff_base": "25ms", "backoff_cap": "250ms"},
                       "outlier": {"consecutive_failures": 3, "base_ejection": "5s",
                                   "max_ejected_ratio": 0.5},
                       "breaker": {"enabled": False}},
            "release": {"strategy": "canary", "steps": [10, 50], "step_time": "10s",
                        "ready_timeout": "1m", "drain_timeout": "5s", "warm": "1m",
                        "smoke": [{"path": "/health", "method": "HEAD", "status": 204,
                                   "contains": "ok"}],
                        "analysis": {"min_requests": 10, "max_error_increase": 0.05,
                                     "max_p99_ratio": 2, "p99_slack": "10ms", "extend": 1,
                                     "on_inconclusive": "promote"}},
        },
        "db": {"command": "db", "health": {"tcp": True}, "restart": "no", "data": "postgres"},
        "job": {"command": "job", "depends_on": ["db"], "health": {"command": ["true"]}},
        "pay": {"external": "https://pay.example"},
    },
    "gateway": {"ingress_port": 8080, "workers": 2, "trusted_proxies": ["10.0.0.0/8"],
                "header_timeout": "5s", "idle_timeout": 30, "access_log": False},
}


def _with(path: tuple[str | int, ...], value: object, base: dict[str, Any] | None = None) -> Any:
    """EVERYTHING (or `base`) with the value at `path` set (or removed, for
    the `...` value)."""
    data = copy.deepcopy(EVERYTHING if base is None else base)
    node = data
    for part in path[:-1]:
        node = node[part]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


WEB_PATH = ("services", "web")

CASES: dict[str, Any] = {
    "everything": EVERYTHING,
    "smallest": {"services": {"web": WEB}},
    "no services": {"services": {}},
    "services missing": {"name": "x"},
    "services not a mapping": {"services": ["web"]},
    "unknown top-level key": {"services": {"web": WEB}, "servics": 1},
    "unknown service key": _with((*WEB_PATH, "comand"), "run"),
    "unknown gateway key": _with(("gateway", "port"), 1),
    "unknown nested policy key": _with((*WEB_PATH, "policy", "retries", "tries"), 1),
    "unknown key in a route's policy": _with((*WEB_PATH, "routes", 0, "policy", "x"), 1),
    "bad service name": {"services": {"Web": WEB}},
    "service not a mapping": {"services": {"web": "run"}},
    "service of nothing": {"services": {"web": None}},
    "neither command nor external": {"services": {"web": {"port": 1}}},
    "command and external": {"services": {"web": {"command": "a", "external": "http://x"}}},
    "external not a URL": {"services": {"web": {"external": "ftp://x"}}},
    "command a number": _with((*WEB_PATH, "command"), 5),
    "command list of numbers": _with((*WEB_PATH, "command"), [1, 2]),
    "env value a number": _with((*WEB_PATH, "env", "A"), 1),
    "env_file list": _with((*WEB_PATH, "env_file"), [".env", "b.env"]),
    "env_file a number": _with((*WEB_PATH, "env_file"), 3),
    "port as text": _with((*WEB_PATH, "port"), "8001"),
    "port a float": _with((*WEB_PATH, "port"), 8001.0),
    "port too high": _with((*WEB_PATH, "port"), 70000),
    "port zero": _with((*WEB_PATH, "port"), 0),
    "port true": _with((*WEB_PATH, "port"), True),
    "replicas negative": _with((*WEB_PATH, "replicas"), -1),
    "replicas as text": _with((*WEB_PATH, "replicas"), "2"),
    "replicas 257": _with((*WEB_PATH, "replicas"), 257),
    "replicas 0": _with((*WEB_PATH, "replicas"), 0),
    "health of two kinds": _with((*WEB_PATH, "health", "tcp"), True),
    "health of no kind": _with((*WEB_PATH, "health"), {"interval": "1s"}),
    "health path without slash": _with((*WEB_PATH, "health", "http"), "health"),
    "health threshold 0": _with((*WEB_PATH, "health", "failure_threshold"), 0),
    "health tcp as text": {"services": {"web": {"command": "a", "health": {"tcp": "yes"}}}},
    "health tcp as 1": {"services": {"web": {"command": "a", "health": {"tcp": 1}}}},
    "health none": _with((*WEB_PATH, "health"), None),
    "duration negative": _with((*WEB_PATH, "health", "interval"), -1),
    "duration a bool": _with((*WEB_PATH, "health", "interval"), True),
    "duration bad text": _with((*WEB_PATH, "health", "interval"), "soon"),
    "duration in minutes": _with((*WEB_PATH, "stop_timeout"), "1.5m"),
    "duration in hours": _with((*WEB_PATH, "stop_timeout"), "2h"),
    "duration none": _with((*WEB_PATH, "stop_timeout"), None),
    "depends_on list": _with((*WEB_PATH, "depends_on"), ["db", "job"]),
    "duration too large for a float": _with((*WEB_PATH, "stop_timeout"), 10**400),
    "duration infinite": _with((*WEB_PATH, "stop_timeout"), float("inf")),
    "duration not a number": _with((*WEB_PATH, "stop_timeout"), float("nan")),
    "duration of 1000 years": _with((*WEB_PATH, "stop_timeout"), 1000 * 365 * 86400),
    "duration in hours too long": _with((*WEB_PATH, "stop_timeout"), "9" * 40 + "h"),
    "depends_on list of lists": _with((*WEB_PATH, "depends_on"), [["db"]]),
    "depends_on list of mappings": _with((*WEB_PATH, "depends_on"), [{"db": 1}]),
    "depends_on bad condition": _with((*WEB_PATH, "depends_on"), {"db": "ready"}),
    "depends_on a string": _with((*WEB_PATH, "depends_on"), "db"),
    "depends_on list of numbers": _with((*WEB_PATH, "depends_on"), [1]),
    "restart shorthand": _with((*WEB_PATH, "restart"), "on-failure"),
    "restart bad policy": _with((*WEB_PATH, "restart"), "sometimes"),
    "restart max negative": _with((*WEB_PATH, "restart", "max_restarts"), -1),
    "restart a number": _with((*WEB_PATH, "restart"), 3),
    "restart left out": _with((*WEB_PATH, "restart"), ...),
    "stop_signal unknown": _with((*WEB_PATH, "stop_signal"), "SIGSTOP"),
    "data unknown": _with((*WEB_PATH, "data"), "mysql"),
    "data sql": _with((*WEB_PATH, "data"), "sql"),
    "route without slash": _with((*WEB_PATH, "routes", 0, "prefix"), "api"),
    "route without prefix": _with((*WEB_PATH, "routes"), [{"strip": True}]),
    "routes not a list": _with((*WEB_PATH, "routes"), {"prefix": "/a"}),
    "retries too many": _with((*WEB_PATH, "policy", "retries", "attempts"), 11),
    "budget ratio above 1": _with((*WEB_PATH, "policy", "retries", "budget_ratio"), 1.5),
    "budget per s as text": _with((*WEB_PATH, "policy", "retries", "budget_per_s"), "5"),
    "ejected ratio negative": _with((*WEB_PATH, "policy", "outlier", "max_ejected_ratio"), -0.1),
    "failures 0": _with((*WEB_PATH, "policy", "outlier", "consecutive_failures"), 0),
    "breaker as text": _with((*WEB_PATH, "policy", "breaker", "enabled"), "on"),
    "breaker as true": _with((*WEB_PATH, "policy", "breaker", "enabled"), True),
    "policy empty": _with((*WEB_PATH, "policy"), {}),
    "steps falling": _with((*WEB_PATH, "release", "steps"), [50, 20]),
    "steps empty": _with((*WEB_PATH, "release", "steps"), []),
    "steps above 100": _with((*WEB_PATH, "release", "steps"), [5, 120]),
    "steps ending at 100": _with((*WEB_PATH, "release", "steps"), [5, 100]),
    "steps left out": _with((*WEB_PATH, "release", "steps"), ...),
    "strategy unknown": _with((*WEB_PATH, "release", "strategy"), "rolling"),
    "smoke path without slash": _with((*WEB_PATH, "release", "smoke", 0, "path"), "health"),
    "smoke without path": _with((*WEB_PATH, "release", "smoke"), [{"method": "GET"}]),
    "smoke method unknown": _with((*WEB_PATH, "release", "smoke", 0, "method"), "PATCH"),
    "smoke status 99": _with((*WEB_PATH, "release", "smoke", 0, "status"), 99),
    "analysis p99 ratio below 1": _with((*WEB_PATH, "release", "analysis", "max_p99_ratio"), 0.5),
    "analysis left out": _with((*WEB_PATH, "release", "analysis"), ...),
    "analysis verdict unknown": _with((*WEB_PATH, "release", "analysis", "on_inconclusive"), "x"),
    "release empty": _with((*WEB_PATH, "release"), {}),
    "gateway workers 0": _with(("gateway", "workers"), 0),
    "gateway workers 65": _with(("gateway", "workers"), 65),
    "gateway left out": _with(("gateway",), ...),
    "gateway proxies a string": _with(("gateway", "trusted_proxies"), "10.0.0.0/8"),
    "gateway access_log as text": _with(("gateway", "access_log"), "no"),
    "name a number": _with(("name",), 5),
    "name none": _with(("name",), None),
    "top level a list": [1, 2],
    "top level nothing": None,
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_the_compiled_schema_answers_as_the_models_do(case: str) -> None:
    data = CASES[case]
    assert_as_the_models(data, _core.validate(copy.deepcopy(data)))


def test_the_table_has_both_answers() -> None:
    # The table above is only a check if it holds valid and invalid manifests.
    verdicts = {case: _core.validate(copy.deepcopy(data)) is not None
                for case, data in CASES.items()}
    assert sum(verdicts.values()) >= 20
    assert len(verdicts) - sum(verdicts.values()) >= 50


def test_defaults_made_by_a_factory_are_fresh_each_time() -> None:
    data = {"services": {"web": {**WEB, "release": {"strategy": "canary"}}}}
    first, second = _core.validate(copy.deepcopy(data)), _core.validate(copy.deepcopy(data))
    assert first is not None and second is not None
    assert first.gateway.trusted_proxies == ["127.0.0.1/32", "::1/128"]
    assert first.gateway.trusted_proxies is not second.gateway.trusted_proxies
    steps = first.services["web"].release.steps
    assert steps == [5, 25, 50, 100] and steps is not second.services["web"].release.steps


def test_the_compiled_schema_is_what_the_models_give_now() -> None:
    # Run `python -m lsq.manifest._compile` after changing the schema, its
    # rules or pydantic, and commit what it writes.
    assert Path(_core_schema.__file__).read_text() == _compile.source()


def test_a_compiled_schema_that_is_not_current_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_core, "_validator", False)
    monkeypatch.setattr(_core_schema, "SOURCES", "made from another schema")
    assert _core.validate({"services": {"web": WEB}}) is None
    monkeypatch.setattr(_core, "_validator", False)
    monkeypatch.setattr(_core_schema, "SOURCES", _core.sources_digest())
    monkeypatch.setattr(_core_schema, "PYDANTIC_CORE", "0.0.1")
    assert _core.validate({"services": {"web": WEB}}) is None
    monkeypatch.setattr(_core, "_validator", False)
    monkeypatch.setattr(_core_schema, "PYDANTIC_CORE", pydantic_core.__version__)
    monkeypatch.setattr(_core_schema, "PYDANTIC", "2.0.0")
    assert _core.validate({"services": {"web": WEB}}) is None
    monkeypatch.setattr(_core, "_validator", False)
    monkeypatch.setattr(_core_schema, "PYDANTIC", pydantic.VERSION)
    assert _core.validate({"services": {"web": WEB}}) is not None
    monkeypatch.setattr(_core, "_validator", False)


def test_a_stale_compiled_schema_still_loads_the_app_with_the_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = tmp_path / "lsq.yaml"
    manifest.write_text("services:\n  web: {command: [/bin/sh, -c, 'exit 0']}\n")
    by_models = []
    validate = _load._validate
    monkeypatch.setattr(_load, "_validate", lambda *a: by_models.append(a) or validate(*a))
    monkeypatch.setattr(_core, "_validator", False)
    monkeypatch.setattr(_core_schema, "SOURCES", "made from another schema")
    app = load(manifest, frozen=True)
    assert len(by_models) == 1
    assert app == load(manifest).frozen()


def test_a_compiled_schema_naming_a_rule_that_is_gone_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As after renaming a rule without compiling the schema again: loading
    # it fails, and the models check instead of a traceback.
    monkeypatch.delattr(_rules, "prefix_slash")
    monkeypatch.delitem(sys.modules, "lsq.manifest._core_schema")
    monkeypatch.delattr(lsq.manifest, "_core_schema")  # loaded again, as a new process would
    monkeypatch.setattr(_core, "_validator", False)
    assert _core.validate({"services": {"web": WEB}}) is None


def test_loading_a_valid_manifest_frozen_never_imports_pydantic(tmp_path: Path) -> None:
    manifest = tmp_path / "lsq.yaml"
    manifest.write_text(
        "services:\n"
        "  web: {command: [/bin/sh, -c, 'exit 0'], health: {http: /}, restart: always}\n"
        "  job: {command: 'exit 0', depends_on: [web], release: {strategy: canary}}\n"
    )
    script = (
        "import sys; from pathlib import Path; from lsq.manifest._load import load\n"
        f"app = load(Path({str(manifest)!r}), frozen=True)\n"
        "print(sorted(app.services), type(app.manifest).__module__,\n"
        "      sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic'),\n"
        "      sorted(m for m in sys.modules if m.startswith(('pydantic_core', 'typing_ext'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, check=True)
    # Of pydantic-core, only its compiled module (see `_core._extension`).
    assert done.stdout.split("\n")[0] == (
        "['job', 'web'] lsq.manifest._frozen [] ['pydantic_core._pydantic_core']"
    )


def test_the_models_work_after_a_check_loaded_pydantic_core_alone(tmp_path: Path) -> None:
    # A valid manifest, then a bad one in the same process: the models load
    # pydantic, whose package takes the compiled module already loaded.
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("services:\n  web: {command: 'exit 0'}\n")
    bad.write_text("services:\n  web: {command: 'exit 0', replicas: many}\n")
    script = (
        "import sys; from pathlib import Path; from lsq.manifest._load import load\n"
        "from lsq.errors import ManifestError\n"
        f"load(Path({str(good)!r}), frozen=True)\n"
        "loaded = sys.modules['pydantic_core._pydantic_core']\n"
        "assert 'pydantic_core' not in sys.modules\n"
        "try:\n"
        f"    load(Path({str(bad)!r}), frozen=True)\n"
        "except ManifestError as exc:\n"
        "    print(exc)\n"
        "import pydantic, pydantic_core\n"
        "assert pydantic_core.SchemaValidator is loaded.SchemaValidator\n"
        "assert 'pydantic-core version' in pydantic.version.version_info()\n"
        "class M(pydantic.BaseModel):\n"
        "    n: int\n"
        "print(M(n='3').n)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 0, done.stderr
    error, number = done.stdout.splitlines()
    assert error.startswith("bad.yaml:2:") and "services.web.replicas" in error, error
    assert number == "3"
