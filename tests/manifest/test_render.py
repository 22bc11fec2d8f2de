"""render_config: resolved values with their origins."""

from __future__ import annotations

import json
from pathlib import Path

from lsq.manifest import load, render_config


def app_with_everything(tmp_path: Path) -> Path:
    (tmp_path / ".env").write_text("TOKEN=abc#123\nNOTE=hello # c\n")
    manifest = tmp_path / "lsq.yaml"
    manifest.write_text(
        "services:\n"
        "  web:\n"
        "    command: serve ${HOST:-localhost}\n"
        "    port: 8001\n"
        "    env_file: .env\n"
        "    env: {FLAG: true}\n"
        "    health: {http: /health}\n"
    )
    return manifest


def test_text_form_shows_value_and_origin(tmp_path: Path) -> None:
    app = load(app_with_everything(tmp_path), environ={"HOST": "0.0.0.0"})
    lines = render_config(app).splitlines()
    assert f"name: {tmp_path.name}  # default" in lines
    assert "    command: serve 0.0.0.0  # environment, lsq.yaml:3:14" in lines
    assert "    port: 8001  # lsq.yaml:4:11" in lines
    assert "    replicas: 1  # default" in lines
    assert '      TOKEN: "abc#123"  # .env:1' in lines
    assert "      NOTE: hello  # .env:2" in lines
    assert '      FLAG: "true"  # lsq.yaml:6:17' in lines
    assert "      http: /health  # lsq.yaml:7:20" in lines
    assert "\x1b" not in "\n".join(lines)


def test_json_form_has_value_and_origin_per_leaf(tmp_path: Path) -> None:
    app = load(app_with_everything(tmp_path), environ={})
    data = json.loads(render_config(app, json=True))
    web = data["services"]["web"]
    assert web["port"] == {"value": 8001, "origin": "lsq.yaml:4:11"}
    assert web["command"] == {"value": "serve localhost", "origin": "lsq.yaml:3:14"}
    assert web["env"]["TOKEN"] == {"value": "abc#123", "origin": ".env:1"}
    assert web["health"]["interval"] == {"value": 5.0, "origin": "default"}
    assert data["gateway"]["workers"] == {"value": 1, "origin": "default"}


def test_the_short_form_of_restart_shows_where_its_policy_was_written(tmp_path: Path) -> None:
    manifest = tmp_path / "lsq.yaml"
    manifest.write_text(
        "services:\n"
        "  web:\n"
        "    command: serve\n"
        "    restart: on-failure\n"
        "  job:\n"
        "    command: work\n"
        "    restart: {policy: 'no'}\n"
    )
    data = json.loads(render_config(load(manifest, environ={}), json=True))
    web, job = data["services"]["web"]["restart"], data["services"]["job"]["restart"]
    assert web["policy"] == {"value": "on-failure", "origin": "lsq.yaml:4:14"}
    assert web["backoff"]["origin"] == "default"
    assert job["policy"] == {"value": "no", "origin": "lsq.yaml:7:23"}
    assert job["max_restarts"]["origin"] == "default"
