"""`lsq init`, name checks, and adding a service to lsq.yaml without losing anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from tplhelpers import ROOT, Lsq

from lsq.manifest import Service
from lsq.templates import add_service


def test_init_writes_manifest_readme_and_gitignore(app: Path) -> None:
    manifest = (app / "lsq.yaml").read_text()
    assert "services: {}" in manifest
    assert manifest.lstrip().startswith("#")
    assert ".lsq/" in (app / ".gitignore").read_text().splitlines()
    assert "lsq new" in (app / "README.md").read_text()


def test_init_keeps_an_existing_gitignore(tmp_path: Path, lsq: Lsq) -> None:
    (tmp_path / ".gitignore").write_text("*.log\n")
    assert lsq("init", cwd=tmp_path).code == 0
    assert (tmp_path / ".gitignore").read_text().splitlines() == ["*.log", ".lsq/"]


def test_init_refuses_an_existing_app(app: Path, lsq: Lsq) -> None:
    result = lsq("init", str(app), cwd=app)
    assert result.code == 2
    assert "already exists" in result.err


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Api", "lowercase letters"),
        ("my_api", "lowercase letters"),
        ("-api", "lowercase letters"),
        ("api--v2", "lowercase letters"),
        ("1api", "lowercase letters"),
        ("lsq", "reserved"),
        ("gateway", "reserved"),
        ("dashboard", "reserved"),
    ],
)
def test_bad_service_names_are_refused(
    app: Path, lsq: Lsq, name: str, expected: str
) -> None:
    before = (app / "lsq.yaml").read_text()
    result = lsq("new", "--template", "python", "--no-install", "--", name, cwd=app)
    assert result.code == 2
    assert expected in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert (app / "lsq.yaml").read_text() == before
    assert not (app / name).exists()


def test_a_name_already_in_the_manifest_is_refused(app: Path, lsq: Lsq) -> None:
    assert lsq("new", "orders", "--no-install", cwd=app).code == 0
    result = lsq("new", "orders", "--no-install", "--force", cwd=app)
    assert result.code == 2
    assert "exists already" in result.err


def test_an_existing_folder_is_refused_unless_forced(app: Path, lsq: Lsq) -> None:
    (app / "orders").mkdir()
    (app / "orders" / "notes.txt").write_text("mine")
    result = lsq("new", "orders", "--no-install", cwd=app)
    assert result.code == 2
    assert "--force" in result.err
    assert "orders" not in (app / "lsq.yaml").read_text().split("services:")[1]
    assert lsq("new", "orders", "--no-install", "--force", cwd=app).code == 0
    assert (app / "orders" / "notes.txt").read_text() == "mine"
    assert (app / "orders" / "app" / "main.py").is_file()


def test_new_without_a_manifest_says_run_init(tmp_path: Path, lsq: Lsq) -> None:
    result = lsq("new", "orders", "--no-install", cwd=tmp_path)
    assert result.code == 2
    assert "lsq init" in result.err


def test_unknown_template_lists_the_built_ins(app: Path, lsq: Lsq) -> None:
    result = lsq("new", "orders", "--template", "cobol", "--no-install", cwd=app)
    assert result.code == 2
    assert "python" in result.err and "node" in result.err


def test_new_keeps_comments_and_order(tmp_path: Path) -> None:
    manifest = tmp_path / "lsq.yaml"
    manifest.write_text(
        "# my app\n"
        "name: shop   # the name\n"
        "services:\n"
        "  # the database first\n"
        "  db:\n"
        "    command: 'postgres -D data'  # quoted on purpose\n"
        "  web:\n"
        "    command: node web.js\n"
        "gateway:\n"
        "  workers: 2\n"
    )
    add_service(
        manifest,
        "orders",
        {"command": "x", "cwd": "orders", "health": {"http": "/health/ready"}},
    )
    text = manifest.read_text()
    for kept in (
        "# my app",
        "# the name",
        "# the database first",
        "'postgres -D data'  # quoted on purpose",
        "workers: 2",
    ):
        assert kept in text
    order = [text.index(k) for k in ("db:", "web:", "orders:", "gateway:")]
    assert order == sorted(order)


def test_generated_entries_validate_against_the_schema(app: Path, lsq: Lsq) -> None:
    from ruamel.yaml import YAML

    assert lsq("new", "orders", "--no-install", "--port", "8123", cwd=app).code == 0
    assert (
        lsq("new", "web", "-t", "node", "--data", "none", "--no-install", cwd=app).code
        == 0
    )
    services = YAML(typ="safe").load((app / "lsq.yaml").read_text())["services"]
    model = Service
    orders = model.model_validate(services["orders"])
    assert (orders.cwd, orders.port, orders.data) == ("orders", 8123, "sqlite")
    assert orders.health.http == "/health/ready"
    web = model.model_validate(services["web"])
    assert web.data is None and web.command == "node server.js"


def test_templates_lists_builtins_with_versions(tmp_path: Path, lsq: Lsq) -> None:
    import json

    result = lsq("templates", "--json", cwd=tmp_path)
    found = {t["name"]: t["version"] for t in json.loads(result.out)}
    builtin = ROOT / "src" / "lsq" / "templates" / "builtin"
    for name in ("python", "node"):
        assert found[name] == (builtin / name / "VERSION").read_text().strip()
