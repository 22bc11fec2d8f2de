"""load(): the good path, the failure-scenario rows and the bad-input table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from lsq.errors import ManifestError, Mark
from lsq.manifest import AppConfig, Origin, find_manifest, load

Load = Callable[..., AppConfig]
Write = Callable[..., Path]

BASIC = """
name: shop
services:
  web:
    command: python -m http.server
    port: 8001
    health: {http: /health}
  worker:
    command: [python, worker.py]
    depends_on: [web]
"""


def test_basic_manifest_loads_with_origins(load_app: Load) -> None:
    app = load_app(BASIC)
    assert app.name == "shop"
    assert app.services["web"].port == 8001
    assert app.services["worker"].command == ["python", "worker.py"]
    assert app.origin("services.web.port") == Origin(
        "manifest", Mark("lsq.yaml", 5, 11)
    )
    assert app.origin("services.web.replicas") == Origin("default")
    assert app.warnings == ()


def test_list_depends_on_resolves_to_healthy_or_started(load_app: Load) -> None:
    app = load_app(
        """
        services:
          db: {command: db, health: {tcp: true}}
          cache: {command: cache}
          api: {command: api, depends_on: [db, cache]}
          job: {command: job, depends_on: {db: completed}}
        """
    )
    assert app.services["api"].depends_on == {"db": "healthy", "cache": "started"}
    assert app.services["job"].depends_on == {"db": "completed"}
    assert app.origin("services.api.depends_on.cache").mark == Mark("lsq.yaml", 4, 40)


def test_depending_on_an_external_service_is_fine(load_app: Load) -> None:
    app = load_app(
        """
        services:
          pay: {external: "https://pay.example.test"}
          api: {command: api, depends_on: [pay]}
        """
    )
    assert app.services["api"].depends_on == {"pay": "started"}


def test_find_manifest_walks_up(tmp_path: Path, write: Write) -> None:
    manifest = write("lsq.yaml", BASIC)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_manifest(deep) == manifest


def test_find_manifest_accepts_yml(tmp_path: Path, write: Write) -> None:
    manifest = write("lsq.yml", BASIC)
    assert find_manifest(tmp_path) == manifest


def test_find_manifest_without_one_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"no lsq\.yaml in .*; run lsq from"):
        find_manifest(tmp_path)


def test_missing_manifest_file_is_a_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="lsq.yaml: file not found"):
        load(tmp_path / "lsq.yaml", environ={})


# Row B28: env values pass through as written.
def test_b28_env_values_keep_their_text(load_app: Load) -> None:
    app = load_app(
        """
        services:
          web:
            command: run
            env:
              DEBUG: yes
              COUNTRY: NO
              FLAG: true
              MODE: off
              VERSION: 1.10
              OCTAL: 0700
              TIME: 1:30
              QUOTED: "1.10"
        """
    )
    assert app.env["web"] == {
        "DEBUG": "yes",
        "COUNTRY": "NO",
        "FLAG": "true",
        "MODE": "off",
        "VERSION": "1.10",
        "OCTAL": "0700",
        "TIME": "1:30",
        "QUOTED": "1.10",
    }
    assert app.services["web"].env == app.env["web"]


def test_argv_items_keep_their_text(load_app: Load) -> None:
    app = load_app("services:\n  web: {command: [tool, --version, 1.10, true]}\n")
    assert app.services["web"].command == ["tool", "--version", "1.10", "true"]


# Row B30: two anchors, each with an env key, merged into one service.
def test_b30_merge_keys_combine_env_maps(load_app: Load) -> None:
    app = load_app(
        """
        x-a: &a
          env: {A: "1", SHARED: from-a}
          replicas: 2
        x-b: &b
          env: {B: "2", SHARED: from-b}
          replicas: 3
        services:
          web:
            <<: [*a, *b]
            command: run
          api:
            <<: [*a, *b]
            command: run
            env: {SHARED: own, C: "3"}
        """
    )
    assert app.env["web"] == {"A": "1", "B": "2", "SHARED": "from-a"}
    assert app.services["web"].replicas == 2  # first listed anchor wins
    assert app.env["api"] == {"A": "1", "B": "2", "SHARED": "own", "C": "3"}
    assert app.origin("services.web.env.B").mark == Mark("lsq.yaml", 5, 12)


def test_override_merges_by_key(load_app: Load) -> None:
    app = load_app(
        """
        services:
          web:
            command: run
            port: 8001
            env: {A: base, B: base}
        """,
        files={
            "lsq.local.yaml": """
            services:
              web:
                port: 9001
                env: {B: local}
              extra: {command: more}
            """
        },
        overrides=("lsq.local.yaml",),
    )
    assert app.services["web"].port == 9001
    assert app.services["web"].command == "run"
    assert app.env["web"] == {"A": "base", "B": "local"}
    assert set(app.services) == {"web", "extra"}
    assert app.origin("services.web.port").mark == Mark("lsq.local.yaml", 3, 11)


def test_interpolation_from_environ(load_app: Load) -> None:
    app = load_app(
        """
        services:
          web:
            command: serve --db ${DB_HOST}:${DB_PORT:-5432} $$HOME $HOME
            port: ${WEB_PORT:-8001}
            env: {URL: "http://${DB_HOST}"}
        """,
        environ={"DB_HOST": "db.local"},
    )
    web = app.services["web"]
    assert web.command == "serve --db db.local:5432 $HOME $HOME"
    assert web.port == 8001
    assert app.env["web"]["URL"] == "http://db.local"
    assert app.origin("services.web.command").source == "environment"
    assert app.origin("services.web.port").source == "manifest"
    assert app.warnings == ()


def test_single_quoted_values_are_literal(load_app: Load) -> None:
    app = load_app(
        """
        services:
          web:
            command: 'echo ${NOT_EXPANDED} $$'
            env: {RAW: '${ALSO_RAW}'}
        """
    )
    assert app.services["web"].command == "echo ${NOT_EXPANDED} $$"
    assert app.env["web"]["RAW"] == "${ALSO_RAW}"
    assert app.warnings == ()


def test_undefined_variable_warns_with_place(load_app: Load) -> None:
    app = load_app("services:\n  web:\n    command: run ${NOPE}\n")
    assert app.services["web"].command == "run "
    (warning,) = app.warnings
    assert warning.startswith(
        "lsq.yaml:3:14: services.web.command: variable NOPE is not set"
    )
    assert "${NOPE:-default}" in warning


def test_env_file_then_env_map(load_app: Load) -> None:
    app = load_app(
        """
        services:
          web:
            command: run
            env_file: [base.env, local.env]
            env: {C: manifest}
        """,
        files={
            "base.env": "A=base\nB=base\nC=base\n",
            "local.env": "B=local\nD=${A}-x\n",
        },
    )
    assert app.env["web"] == {"A": "base", "B": "local", "C": "manifest", "D": "base-x"}
    assert app.origin("services.web.env.B") == Origin(
        "env_file", Mark("local.env", 1, 1)
    )
    assert app.origin("services.web.env.C").source == "manifest"


# Row B23: the .env grammar, and `lsq config` shows the resolved values.
def test_b23_dotenv_values(load_app: Load) -> None:
    from lsq.manifest import render_config

    dotenv = 'TOKEN=abc#123\nNOTE=hello # comment\nQ="x # y"\nS=\'lit\'\nE="a\\"b"\n'
    app = load_app(
        "services:\n  web: {command: run, env_file: .env}\n", files={".env": dotenv}
    )
    assert app.env["web"] == {
        "TOKEN": "abc#123",
        "NOTE": "hello",
        "Q": "x # y",
        "S": "lit",
        "E": 'a"b',
    }
    text = render_config(app)
    assert 'TOKEN: "abc#123"  # .env:1' in text
    assert "NOTE: hello  # .env:2" in text
    assert 'E: "a\\"b"  # .env:5' in text


# Row B27: PORT is LSQ's.
def test_b27_port_in_env_file_is_dropped_with_a_warning(load_app: Load) -> None:
    app = load_app(
        "services:\n  web: {command: run, port: 8001, env_file: .env}\n",
        files={".env": "PORT=9999\nOTHER=1\n"},
    )
    assert app.env["web"] == {"OTHER": "1"}
    assert app.warnings == (
        "PORT in .env:1 is ignored; LSQ sets PORT (8001 for web); "
        "set `port:` in lsq.yaml instead",
    )


def test_reserved_names_in_env_map_are_dropped(load_app: Load) -> None:
    app = load_app(
        """
        services:
          web:
            command: run
            data: sqlite
            env: {LSQ_SERVICE: x, DATABASE_URL: y, PORT: "1", KEEP: k}
        """
    )
    assert app.env["web"] == {"KEEP": "k"}
    assert len(app.warnings) == 3
    assert app.warnings[0].startswith("PORT in lsq.yaml:5 is ignored")
    assert any(
        w.startswith("DATABASE_URL in lsq.yaml:5 is ignored") for w in app.warnings
    )


def test_fixed_port_with_replicas_is_the_gateways_stable_address(load_app: Load) -> None:
    # The gateway listens on the fixed port; replicas get private ports in PORT.
    app = load_app("services:\n  web: {command: run, port: 8001, replicas: 2}\n")
    assert (app.services["web"].port, app.services["web"].replicas) == (8001, 2)


def test_extension_keys_are_ignored(load_app: Load) -> None:
    app = load_app("x-notes: {anything: [1, 2]}\nservices:\n  web: {command: run}\n")
    assert set(app.services) == {"web"}


# The bad-input table: (lsq.yaml, other files, overrides, place, key words).
BAD = {
    "a quoted number in the gateway section": (
        "services:\n  web: {command: run}\ngateway: {workers: '2'}\n",
        {},
        (),
        "lsq.yaml:3:20",
        ["gateway.workers: expected an integer, found '2'",
         "write the number without quotes: workers: 2"],
    ),
    "yes for a boolean (text in YAML 1.2)": (
        "services:\n  web: {command: run}\ngateway: {access_log: yes}\n",
        {},
        (),
        "lsq.yaml:3:23",
        ["gateway.access_log: expected true or false, found 'yes'",
         "write access_log: true or access_log: false, without quotes"],
    ),
    "a quoted boolean in a health check": (
        "services:\n  web: {command: run, health: {tcp: 'true'}}\n",
        {},
        (),
        "lsq.yaml:2:37",
        ["services.web.health.tcp: expected true or false, found 'true'",
         "write tcp: true or tcp: false, without quotes"],
    ),
    "a quoted count in a health check": (
        "services:\n  web: {command: run, health: {tcp: true, failure_threshold: '3'}}\n",
        {},
        (),
        "lsq.yaml:2:",
        ["services.web.health.failure_threshold: expected an integer, found '3'"],
    ),
    "a number of thousands of digits (past what int() reads from text)": (
        "services:\n  web:\n    command: run\n    replicas: " + "9" * 5000 + "\n",
        {},
        (),
        "lsq.yaml:4:15",
        [("services.web.replicas: expected a number <= 256, found "
          "9999999999999999999999999999999999999...; write a whole number")],
    ),
    "a negative number of thousands of digits": (
        "services:\n  web:\n    command: run\n    port: -" + "9" * 5000 + "\n",
        {},
        (),
        "lsq.yaml:4:11",
        ["services.web.port: expected a number >= 1, found -999999999999999999999999999999999999...; "],
    ),
    "a duration of thousands of digits": (
        "services:\n  web:\n    command: run\n    stop_timeout: " + "9" * 5000 + "\n",
        {},
        (),
        "lsq.yaml:4:19",
        [("services.web.stop_timeout: expected a duration of at most 1000 years, found "
          "9999999999999999999999999999999999999...; ")],
    ),
    "a negative duration of thousands of digits": (
        "services:\n  web:\n    command: run\n    stop_timeout: -" + "9" * 5000 + "\n",
        {},
        (),
        "lsq.yaml:4:19",
        [("services.web.stop_timeout: expected a duration of 0 or more, found "
          "-999999999999999999999999999999999999...; ")],
    ),
    "a long text where a number goes": (
        "services:\n  web:\n    command: run\n    replicas: " + "x" * 500 + "\n",
        {},
        (),
        "lsq.yaml:4:15",
        ["services.web.replicas: expected an integer, found 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...; "],
    ),
    "a duration too large for a float": (
        "services:\n  web: {command: run, stop_timeout: 1" + "0" * 400 + "}\n",
        {},
        (),
        "lsq.yaml:2:37",
        ["services.web.stop_timeout: expected a duration of at most 1000 years, found 1000"],
    ),
    "an infinite duration": (
        "services:\n  web: {command: run, stop_timeout: .inf}\n",
        {},
        (),
        "lsq.yaml:2:37",
        ["services.web.stop_timeout: expected a duration of at most 1000 years, found inf"],
    ),
    "a mapping in a depends_on list": (
        "services:\n  web: {command: run, depends_on: [{db: 1}]}\n  db: {command: run}\n",
        {},
        (),
        "lsq.yaml:2:23",
        ["services.web.depends_on: expected a service name, found {'db': 1}"],
    ),
    "a list in a depends_on list": (
        "services:\n  web: {command: run, depends_on: [[db]]}\n  db: {command: run}\n",
        {},
        (),
        "lsq.yaml:2:23",
        ["services.web.depends_on: expected a service name, found ['db']"],
    ),
    "unknown key": (
        "services:\n  web:\n    comand: run\n",
        {},
        (),
        "lsq.yaml:3:5",
        ["services.web: unknown key 'comand'", "did you mean 'command'?"],
    ),
    "unknown top-level key": (
        "servics:\n  web: {command: run}\n",
        {},
        (),
        "lsq.yaml:1:1",
        ["top level: unknown key 'servics'", "did you mean 'services'?"],
    ),
    "health key one level too far out": (
        "services:\n  web:\n    command: run\n    health: {http: /}\n    interval: 2s\n",
        {},
        (),
        "lsq.yaml:5:5",
        ["services.web: unknown key 'interval'", "interval belongs under health:; indent it there"],
    ),
    "service key at the top level": (
        "services:\n  web: {command: run}\nreplicas: 2\n",
        {},
        (),
        "lsq.yaml:3:1",
        ["top level: unknown key 'replicas'", "belongs under a service in services:"],
    ),
    "a typo of a health key beside it": (
        "services:\n  web:\n    command: run\n    health: {http: /}\n    intervall: 2s\n",
        {},
        (),
        "lsq.yaml:5:5",
        ["services.web: unknown key 'intervall'", "did you mean 'interval' (under health:)?"],
    ),
    "a restart key beside a one-value restart": (
        "services:\n  web:\n    command: run\n    restart: always\n    max_restarts: 3\n",
        {},
        (),
        "lsq.yaml:5:5",
        ["unknown key 'max_restarts'", "make restart: a mapping with max_restarts in it"],
    ),
    "a gateway key in a service": (
        "services:\n  web:\n    command: run\n    ingress_port: 8080\n",
        {},
        (),
        "lsq.yaml:4:5",
        ["unknown key 'ingress_port'", "a setting of the top-level gateway:; move it there"],
    ),
    "a service named like a section": (
        "services:\n  health: {command: run, http: /}\n",
        {},
        (),
        "lsq.yaml:2:26",
        ["services.health: unknown key 'http'", "known keys: command"],
    ),
    "a setting where a service goes": (
        "services:\n  web: {command: run}\n  replicas: 2\n",
        {},
        (),
        "lsq.yaml:3:13",
        ["services.replicas: expected a mapping, found 2",
         "each entry under services: is a service, a mapping; if replicas: is a setting, "
         "indent it under a service"],
    ),
    "a restart word as the service's policy": (
        "services:\n  web:\n    command: run\n    policy: always\n",
        {},
        (),
        "lsq.yaml:4:13",
        ["services.web.policy: expected a mapping, found 'always'",
         "when to restart goes under restart: (restart: always)"],
    ),
    "a NUL in an env file": (
        "services:\n  web:\n    command: run\n    env_file: .env\n",
        {".env": "A=1\nB=x\0y\n"},
        (),
        ".env:2:4",
        ["expected text a program can be given, found a NUL character", "remove it"],
    ),
    "wrong type": (
        "services:\n  web:\n    command: run\n    port: abc\n",
        {},
        (),
        "lsq.yaml:4:11",
        ["services.web.port: expected an integer, found 'abc'", "leave port out"],
    ),
    "out of range": (
        "services:\n  web:\n    command: run\n    port: 70000\n",
        {},
        (),
        "lsq.yaml:4:11",
        ["services.web.port: expected a number <= 65535, found 70000"],
    ),
    "bad duration": (
        "services:\n  web:\n    command: run\n    stop_timeout: soon\n",
        {},
        (),
        "lsq.yaml:4:19",
        ["services.web.stop_timeout: expected a duration such as 2s", "'soon'"],
    ),
    "bad literal": (
        "services:\n  web:\n    command: run\n    restart: sometimes\n",
        {},
        (),
        "lsq.yaml:4:14",
        ["services.web.restart: expected one of", "found 'sometimes'"],
    ),
    "no command": (
        "services:\n  web:\n    port: 8001\n",
        {},
        (),
        "lsq.yaml:2:3",
        ["services.web: set command (what to run) or external"],
    ),
    "no services": (
        "name: shop\n",
        {},
        (),
        "lsq.yaml:1:1",
        ["missing required key 'services'", "add a services: map"],
    ),
    "unknown dependency": (
        "services:\n  web: {command: run, depends_on: [dbb]}\n  db: {command: db}\n",
        {},
        (),
        "lsq.yaml:2:36",
        ["services.web.depends_on: unknown service 'dbb'", "did you mean 'db'?"],
    ),
    "cycle": (
        "services:\n"
        "  a: {command: a, depends_on: [b]}\n"
        "  b: {command: b, depends_on: [c]}\n"
        "  c: {command: c, depends_on: [a]}\n",
        {},
        (),
        "lsq.yaml:2:32",
        ["dependency cycle a -> b -> c -> a", "remove one"],
    ),
    "self dependency": (
        "services:\n  a: {command: a, depends_on: [a]}\n",
        {},
        (),
        "lsq.yaml:2:32",
        ["dependency cycle a -> a"],
    ),
    # Row B16.
    "shared port": (
        "services:\n  web: {command: w, port: 8001}\n  api: {command: a, port: 8001}\n",
        {},
        (),
        "lsq.yaml:3:21",
        [
            'services.api.port: port 8001 is also used by "web"',
            "give one of them another port or leave both out to have them assigned",
        ],
    ),
    "port is the ingress port": (
        "gateway: {ingress_port: 8080}\nservices:\n  web: {command: w, port: 8080}\n",
        {},
        (),
        "lsq.yaml:3:21",
        ["port 8080 is also used by the gateway's ingress_port"],
    ),
    # Row B25.
    "env-name collision": (
        "services:\n  user-api: {command: a}\n  user_api: {command: b}\n",
        {},
        (),
        "lsq.yaml:3:3",
        ["services.user_api", "LSQ_USER_API_URL", '"user-api"', "rename one"],
    ),
    "health on external": (
        "services:\n"
        "  pay:\n"
        "    external: https://pay.example.test\n"
        "    health: {http: /h}\n",
        {},
        (),
        "lsq.yaml:4:5",
        ["services.pay.health: an external service cannot have health:"],
    ),
    "data on external": (
        "services:\n  pay: {external: 'https://pay.example.test', data: sqlite}\n",
        {},
        (),
        "lsq.yaml:2:47",
        ["services.pay.data: an external service cannot have data:"],
    ),
    "missing env_file": (
        "services:\n  web:\n    command: run\n    env_file: [.env, nope.env]\n",
        {".env": "A=1\n"},
        (),
        "lsq.yaml:4:22",
        ["env_file 'nope.env' not found", "create the file or remove it"],
    ),
    "bad .env line": (
        "services:\n  web: {command: run, env_file: app.env}\n",
        {"app.env": "A=1\n\nthis is not an assignment\n"},
        (),
        "app.env:3:1",
        ["expected KEY=value, found 'this is not an assignment'"],
    ),
    "null env value": (
        "services:\n  web:\n    command: run\n    env:\n      EMPTY:\n",
        {},
        (),
        "lsq.yaml:5:7",
        ["services.web.env.EMPTY: expected a value, found nothing", 'EMPTY: ""'],
    ),
    "unclosed flow mapping": (
        "services:\n  web: {command: run ${NAME}-${OTHER}\n",
        {},
        (),
        "lsq.yaml:2:",
        ["invalid YAML"],
    ),
    "unclosed ${": (
        "services:\n  web:\n    command: echo ${NAME\n",
        {},
        (),
        "lsq.yaml:3:19",
        ["services.web.command: unclosed '${'", "close it with '}'"],
    ),
    "bad variable name": (
        "services:\n  web:\n    command: echo ${1X}\n",
        {},
        (),
        "lsq.yaml:3:19",
        ["expected a variable name after '${'"],
    ),
    "yaml syntax error": (
        "services:\n  web:\n    command: [a, b\n",
        {},
        (),
        "lsq.yaml:4:1",
        ["invalid YAML: expected ',' or ']'", "flow sequence at 3:14"],
    ),
    "tab indentation": (
        "services:\n\tweb: {command: run}\n",
        {},
        (),
        "lsq.yaml:2:1",
        ["invalid YAML", "indent with spaces, not tabs"],
    ),
    "duplicate key": (
        "services:\n  web:\n    command: run\n    port: 1\n    port: 2\n",
        {},
        (),
        "lsq.yaml:5:5",
        ["services.web: duplicate key 'port' (first at line 4)", "keep only one"],
    ),
    "duplicate service": (
        "services:\n  web: {command: a}\n  web: {command: b}\n",
        {},
        (),
        "lsq.yaml:3:3",
        ["services: duplicate key 'web'"],
    ),
    "anchor across files": (
        "x-base: &base {command: run}\nservices:\n  web: *base\n",
        {"over.yaml": "services:\n  api:\n    <<: *base\n"},
        ("over.yaml",),
        "over.yaml:3:9",
        ["undefined alias 'base'", "anchors can't be used across files"],
    ),
    "undefined anchor": (
        "services:\n  web: *base\n",
        {},
        (),
        "lsq.yaml:2:8",
        ["undefined alias 'base'", "define the anchor with &name"],
    ),
    "unsupported tag": (
        "services:\n  web: {command: !!python/object:os.system x}\n",
        {},
        (),
        "lsq.yaml:2:18",
        ["unsupported tag !!python/object:os.system"],
    ),
    "empty file": ("", {}, (), "lsq.yaml:1:1", ["found nothing", "services:"]),
    "merge of a scalar": (
        "x: &x 1\nservices:\n  web: {<<: *x, command: run}\n",
        {},
        (),
        "lsq.yaml:3:9",
        ["'<<' merges mappings, found a scalar"],
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_is_one_line_with_place_and_fix(load_app: Load, case: str) -> None:
    text, files, overrides, place, words = BAD[case]
    with pytest.raises(ManifestError) as info:
        load_app(text, files=files, overrides=overrides)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(place), message
    for word in words:
        assert word in message, message
    assert info.value.fix, message


def test_anchor_defined_in_the_override_itself_works(load_app: Load) -> None:
    app = load_app(
        "services:\n  web: {command: run}\n",
        files={"over.yaml": "x-e: &e {env: {A: '1'}}\nservices:\n  web: {<<: *e}\n"},
        overrides=("over.yaml",),
    )
    assert app.env["web"] == {"A": "1"}


@pytest.mark.parametrize("open_, close, column", [("[", "]", 111), ("{a: ", "}", 402)])
def test_values_nested_too_deeply_get_one_error_not_a_crash(
    load_app: Load, open_: str, close: str, column: int
) -> None:
    # The place is where the nesting passes 100 levels.
    deep = open_ * 3000 + close * 3000
    with pytest.raises(ManifestError) as caught:
        load_app(f"services:\n  web:\n    command: {deep}\n")
    assert str(caught.value) == (
        f"lsq.yaml:3:{column}: expected values nested a few levels deep, found more than "
        "100 levels of [ and { here; close what was opened: each [ with a ], each { with a }"
    )


def test_blocks_indented_too_deeply_are_named_with_their_place(load_app: Load) -> None:
    lines = [f"{'  ' * (level + 2)}k{level}:" for level in range(1000)]
    with pytest.raises(ManifestError) as caught:
        load_app("services:\n  web:\n    command: run\n    env:\n" + "\n".join(lines) + " x\n")
    assert str(caught.value) == (
        "lsq.yaml:103:201: expected values nested a few levels deep, found more than "
        "100 levels of indented blocks here; check the indentation"
    )


def test_aliases_nested_too_deeply_get_one_error_not_a_crash(load_app: Load) -> None:
    # Each alias repeats the one before it inside a list: the text stays
    # flat, the value it stands for is thousands of levels deep.
    anchors = ["x-0: &a0 [1]"] + [f"x-{i}: &a{i} [*a{i - 1}]" for i in range(1, 3000)]
    with pytest.raises(ManifestError) as caught:
        load_app("\n".join(anchors) + "\nservices:\n  web: {command: run, env: {A: *a2999}}\n")
    assert str(caught.value) == (
        "lsq.yaml: values are nested too deeply to read; a manifest needs a few levels at "
        "most; check the anchors (&) and aliases (*)"
    )
