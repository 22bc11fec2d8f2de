"""What reaches a service's environment: `.env` grammar, address variables,
PORT, YAML look-alike values and anchors (B23, B25, B27, B28, B30)."""

from __future__ import annotations

import json
import re
import signal
import subprocess

from rthelpers import LSQ, PY, App, free_port, wait_for

PRINT_ENV = """
import os, sys, time
for key in sys.argv[1:]:
    print(f"{key}=[{os.environ.get(key, '<unset>')}]", flush=True)
print("env printed", flush=True)
time.sleep(300)
"""


def _printed(text: str, keys: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for key in keys:
        match = re.search(rf"\| {key}=\[(.*?)\]$", text, re.MULTILINE)
        assert match, f"{key} not printed in:\n{text}"
        found[key] = match.group(1)
    return found


def test_dotenv_values_follow_the_documented_grammar(app: App) -> None:
    # B23
    app.write(
        ".env",
        """
        TOKEN=abc#123
        NOTE=hello # comment
        Q="x # y"
        S='lit'
        E="a\\"b"
    """,
    )
    app.write("show.py", PRINT_ENV)
    keys = ["TOKEN", "NOTE", "Q", "S", "E"]
    app.manifest(f"""
        services:
          show:
            command: [{PY}, show.py, {", ".join(keys)}]
            env_file: .env
    """)
    expected = {
        "TOKEN": "abc#123",
        "NOTE": "hello",
        "Q": "x # y",
        "S": "lit",
        "E": 'a"b',
    }

    up = app.up()
    up.wait_output("env printed")
    assert _printed(up.output(), keys) == expected
    assert _printed(app.logs("show", until="E=["), keys) == expected

    config = json.loads(app.lsq("config", "--json").stdout)
    env = config["services"]["show"]["env"]
    assert {k: env[k]["value"] for k in keys} == expected
    assert env["TOKEN"]["origin"] == ".env:1"
    text = app.lsq("config").stdout
    assert "abc#123" in text and "# .env:2" in text


def test_a_dotenv_line_that_does_not_parse_is_an_error_with_its_line(app: App) -> None:
    app.write(".env", "A=1\nnot a pair\n")
    app.manifest("""
        services:
          show:
            command: env
            env_file: .env
    """)
    for args in (("validate",), ("up",), ("config",)):
        result = app.lsq(*args)
        assert result.returncode == 2, args
        assert result.stderr.startswith("lsq: error: .env:2:1:"), result.stderr
    assert not (app.state_dir() / "runtime.json").exists()


def test_address_variables_of_hyphenated_and_dotted_names(app: App) -> None:
    # B25
    app.write("show.py", PRINT_ENV)
    sleeper = f"[{PY}, -c, 'import time; time.sleep(300)']"
    keys = ["LSQ_USER_API_URL", "LSQ_BILLING_V2_URL"]
    app.manifest(f"""
        services:
          user-api:
            command: {sleeper}
          billing.v2:
            command: {sleeper}
          web:
            command: [{PY}, show.py, {", ".join(keys)}]
            depends_on: [user-api, billing.v2]
    """)
    result = app.lsq("up", "-d", "--timeout", "20")
    app.track_runtime()
    assert result.returncode == 0, result.stderr
    status = app.ps()
    address = {s["name"]: s["address"] for s in status["services"]}  # type: ignore[attr-defined]
    logs = app.logs("web", until="env printed")

    printed = _printed(logs, keys)
    assert printed == {
        "LSQ_USER_API_URL": address["user-api"],
        "LSQ_BILLING_V2_URL": address["billing.v2"],
    }
    assert all(v.startswith("http://127.0.0.1:") for v in printed.values())


def test_names_that_give_the_same_variable_are_refused(app: App) -> None:
    # B25, second half
    app.manifest("""
        services:
          user-api: {command: env}
          user_api: {command: env}
    """)
    for args in (("validate",), ("up",)):
        result = app.lsq(*args)
        assert result.returncode == 2
        assert "LSQ_USER_API_URL" in result.stderr and '"user-api"' in result.stderr
    assert not (app.state_dir() / "runtime.json").exists()


def test_port_from_dotenv_is_ignored_the_same_way_by_up_and_run(app: App) -> None:
    # B27 (a free port stands in for 8001)
    port = free_port()
    app.write(".env", "PORT=9000\nOTHER=kept\n")
    app.write("show.py", PRINT_ENV)
    keys = ["PORT", "OTHER"]
    app.manifest(f"""
        services:
          web:
            command: [{PY}, show.py, {", ".join(keys)}]
            port: {port}
            env_file: .env
    """)
    warning = f"PORT in .env:1 is ignored; LSQ sets PORT ({port} for web)"

    run = subprocess.Popen(
        [LSQ, "run", "web"],
        cwd=app.root,
        env=app.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = run.communicate(timeout=3)
    except subprocess.TimeoutExpired:
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=5)
    assert _printed("".join(f"| {line}\n" for line in out.splitlines()), keys) == {
        "PORT": str(port),
        "OTHER": "kept",
    }
    assert warning in err

    result = app.lsq("up", "-d", "--timeout", "20")
    app.track_runtime()
    assert result.returncode == 0, result.stderr
    assert warning in result.stderr
    web = app.service("web")
    printed = _printed(app.logs("web", until="env printed"), keys)
    assert printed["OTHER"] == "kept"
    assert printed["PORT"] != "9000"
    # PORT is the instance's port (docs/manifest.md); the service's address
    # is the manifest's port in both modes.
    assert printed["PORT"] == str(web["instances"][0]["port"])  # type: ignore[index]
    assert web["address"] == f"http://127.0.0.1:{port}"


def test_yaml_lookalike_values_reach_the_process_as_written(app: App) -> None:
    # B28
    app.write("show.py", PRINT_ENV)
    keys = ["DEBUG", "COUNTRY", "FLAG", "MODE", "VERSION", "PERMS"]
    app.manifest(f"""
        services:
          show:
            command: [{PY}, show.py, {", ".join(keys)}]
            env:
              DEBUG: yes
              COUNTRY: NO
              FLAG: true
              MODE: off
              VERSION: 1.10
              PERMS: 0700
    """)
    up = app.up()
    up.wait_output("env printed")

    assert _printed(up.output(), keys) == {
        "DEBUG": "yes",
        "COUNTRY": "NO",
        "FLAG": "true",
        "MODE": "off",
        "VERSION": "1.10",
        "PERMS": "0700",
    }


def test_merged_anchors_combine_env_maps_in_config_and_process(app: App) -> None:
    # B30: the documented rule: env maps merge key by key, the first anchor
    # wins for a shared key, the service's own keys win over all.
    app.write("show.py", PRINT_ENV)
    keys = ["A", "B", "SHARED", "OWN"]
    app.manifest(f"""
        x-a: &a
          env: {{A: from-a, SHARED: from-a}}
          stop_timeout: 3s
        x-b: &b
          env: {{B: from-b, SHARED: from-b}}
          stop_timeout: 7s
        services:
          show:
            <<: [*a, *b]
            command: [{PY}, show.py, {", ".join(keys)}]
            env: {{OWN: own}}
    """)
    expected = {"A": "from-a", "B": "from-b", "SHARED": "from-a", "OWN": "own"}

    config = json.loads(app.lsq("config", "--json").stdout)
    service = config["services"]["show"]
    assert {k: service["env"][k]["value"] for k in keys} == expected
    assert service["stop_timeout"]["value"] == 3.0
    text = app.lsq("config").stdout
    assert "A: from-a" in text and "B: from-b" in text

    up = app.up()
    up.wait_output("env printed")
    assert _printed(up.output(), keys) == expected



def test_port_in_an_argv_command_is_the_instances_port(app: App) -> None:
    # ${PORT} is left alone at load time (no warning) and filled in per instance.
    script = (
        "import os, sys, time; "
        "print('argv=[%s|%s|%s] env=[%s]' % (*sys.argv[1:4], os.environ['PORT']), "
        "flush=True); time.sleep(300)"
    )
    app.manifest(f"""
        services:
          web:
            command: [{PY}, -c, "{script}", "${{PORT}}", "$PORT", "${{PORT_X:-kept}}"]
            replicas: 2
    """)
    pattern = r"argv=\[(\d+)\|(\d+)\|kept\] env=\[(\d+)\]"
    up = app.up()
    up.wait_ready()
    wait_for(lambda: len(re.findall(pattern, up.output())) >= 2, 15, "two instances' lines")
    text = up.output()
    assert "is not set" not in text  # no interpolation warning for PORT
    lines = re.findall(pattern, text)
    assert all(argv == bare == env for argv, bare, env in lines), lines
    instances = app.service("web")["instances"]
    ports = {str(instance["port"]) for instance in instances}  # type: ignore[attr-defined]
    assert {argv for argv, _, _ in lines} == ports
    assert len(ports) == 2
