"""Template versions: status, update keeping edits, conflicts per file (B47),
binary files byte for byte (B48), and tasks only with --trust."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from tplhelpers import ROOT, Lsq, commit_and_tag

BUILTIN = ROOT / "src" / "lsq" / "templates" / "builtin"


def _status(
    lsq: Lsq, app: Path, env: dict[str, str] | None = None
) -> dict[str, dict[str, object]]:
    result = lsq("template", "status", "--json", cwd=app, env=env)
    assert result.code == 0, result.err
    return {row["service"]: row for row in json.loads(result.out)}


def _custom_template(root: Path) -> Path:
    """A git template, v1.0.0: a text file rendered and one copied as is."""
    repo = root / "tpl"
    repo.mkdir()
    (repo / "copier.yml").write_text(
        "_templates_suffix: .jinja\n_answers_file: .copier-answers.yml\n"
        "service_name: {type: str}\n"
        "data: {type: str, default: none}\n"
    )
    (repo / "{{_copier_conf.answers_file}}.jinja").write_text(
        "{{ _copier_answers|to_nice_yaml -}}\n"
    )
    (repo / "lsq-command").write_text("./run.sh\n")
    (repo / "greeting.txt.jinja").write_text(
        "hello from {{ service_name }}\nline two\n"
    )
    (repo / "config.ini").write_text(
        "[main]\nmode = one\na = 1\nb = 2\nc = 3\nd = 4\nlimit = 10\n"
    )
    commit_and_tag(repo, "v1.0.0")
    return repo


def _release_v2(repo: Path) -> None:
    (repo / "greeting.txt.jinja").write_text(
        "welcome to {{ service_name }}\nline two\n"
    )
    (repo / "config.ini").write_text(
        "[main]\nmode = one\na = 1\nb = 2\nc = 3\nd = 4\nlimit = 20\n"
    )
    (repo / "added.txt").write_text("new in v2\n")
    commit_and_tag(repo, "v2.0.0")


def test_custom_template_change_reaches_an_old_service(
    app: Path, lsq: Lsq, tmp_path: Path
) -> None:
    repo = _custom_template(tmp_path)
    assert lsq("new", "orders", "--template", str(repo), cwd=app).code == 0
    svc = app / "orders"
    assert (svc / "greeting.txt").read_text().startswith("hello from orders")
    # The developer edits a line the template will not touch (git merges
    # hunks that are apart; adjacent changes would be a conflict).
    (svc / "config.ini").write_text(
        "[main]\nmode = mine\na = 1\nb = 2\nc = 3\nd = 4\nlimit = 10\n"
    )
    assert _status(lsq, app)["orders"]["behind"] is False

    _release_v2(repo)
    row = _status(lsq, app)["orders"]
    assert (row["version"], row["latest"], row["behind"]) == ("1.0.0", "2.0.0", True)

    result = lsq("template", "update", "orders", cwd=app)
    assert result.code == 0, result.err
    assert (svc / "greeting.txt").read_text() == "welcome to orders\nline two\n"
    assert (
        svc / "config.ini"
    ).read_text() == "[main]\nmode = mine\na = 1\nb = 2\nc = 3\nd = 4\nlimit = 20\n"
    assert (svc / "added.txt").read_text() == "new in v2\n"
    for line in (
        "updated     greeting.txt",
        "updated     config.ini",
        "added       added.txt",
    ):
        assert line in result.out
    assert _status(lsq, app)["orders"]["behind"] is False


def test_b47_conflict_is_reported_per_file_and_left_in_the_file(
    app: Path, lsq: Lsq, tmp_path: Path
) -> None:
    repo = _custom_template(tmp_path)
    assert lsq("new", "orders", "--template", str(repo), cwd=app).code == 0
    svc = app / "orders"
    (svc / "greeting.txt").write_text("hi there, orders\nline two\n")
    _release_v2(repo)

    result = lsq("template", "update", "orders", cwd=app)
    assert result.code == 2
    assert "conflict    greeting.txt" in result.out
    assert "1 file(s) have conflicts" in result.err
    text = (svc / "greeting.txt").read_text()
    # Both sides are on disk: the developer's and the template's line.
    assert "<<<<<<< before updating" in text
    assert "hi there, orders" in text and "welcome to orders" in text
    # Files that merged cleanly were still updated, and reported as such.
    assert "updated     config.ini" in result.out
    assert "limit = 20" in (svc / "config.ini").read_text()


def test_b47_force_overwrites_and_says_so_truthfully(
    app: Path, lsq: Lsq, tmp_path: Path
) -> None:
    repo = _custom_template(tmp_path)
    assert lsq("new", "orders", "--template", str(repo), cwd=app).code == 0
    svc = app / "orders"
    (svc / "greeting.txt").write_text("hi there, orders\nline two\n")
    (svc / "config.ini").write_text(
        "[main]\nmode = mine\na = 1\nb = 2\nc = 3\nd = 4\nlimit = 10\n"
    )
    _release_v2(repo)

    result = lsq("template", "update", "orders", "--force", cwd=app)
    assert result.code == 0, result.err
    # "overwritten" is reported and is what happened on disk, byte for byte.
    assert "overwritten greeting.txt" in result.out
    assert (svc / "greeting.txt").read_text() == "welcome to orders\nline two\n"
    # --force only touches conflicts: a cleanly merged edit stays.
    assert "updated     config.ini" in result.out
    assert (
        svc / "config.ini"
    ).read_text() == "[main]\nmode = mine\na = 1\nb = 2\nc = 3\nd = 4\nlimit = 20\n"
    # Every reported file really changed; unchanged files are not reported.
    reported = [line.split()[-1] for line in result.out.splitlines()[1:]]
    assert sorted(reported) == sorted(
        [".copier-answers.yml", "added.txt", "config.ini", "greeting.txt"]
    )


def test_b48_binary_files_are_copied_byte_for_byte(
    app: Path, lsq: Lsq, tmp_path: Path
) -> None:
    repo = _custom_template(tmp_path)
    assets = repo / "static"
    assets.mkdir()
    png = (BUILTIN / "python" / "static" / "favicon.png").read_bytes()
    # Bytes that are not UTF-8 and would look like template syntax if decoded.
    font = bytes(range(256)) * 4 + b"{{ broken }}{% if %}\xff\xfe"
    (assets / "favicon.png").write_bytes(png)
    (assets / "font.woff2").write_bytes(font)
    (assets / "empty.bin").write_bytes(b"")
    commit_and_tag(repo, "v1.1.0")

    result = lsq("new", "orders", "--template", str(repo), cwd=app)
    assert result.code == 0, result.err
    out = app / "orders" / "static"
    for name in ("favicon.png", "font.woff2", "empty.bin"):
        want = hashlib.sha256((assets / name).read_bytes()).hexdigest()
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == want
    # Text files ending in .jinja are still rendered.
    assert (app / "orders" / "greeting.txt").read_text().startswith("hello from orders")


def test_builtin_favicon_survives_generation(app: Path, lsq: Lsq) -> None:
    assert lsq("new", "orders", "--no-install", cwd=app).code == 0
    src = BUILTIN / "python" / "static" / "favicon.png"
    assert (app / "orders" / "static" / "favicon.png").read_bytes() == src.read_bytes()


def test_template_tasks_need_trust(app: Path, lsq: Lsq, tmp_path: Path) -> None:
    repo = _custom_template(tmp_path)
    with (repo / "copier.yml").open("a") as f:
        f.write("_tasks:\n  - touch task-ran\n")
    commit_and_tag(repo, "v1.2.0")

    refused = lsq("new", "orders", "--template", str(repo), cwd=app)
    assert refused.code == 2
    assert "--trust" in refused.err
    assert not (app / "orders" / "task-ran").exists()
    assert "orders" not in (app / "lsq.yaml").read_text()

    trusted = lsq(
        "new", "orders", "--template", str(repo), "--trust", "--force", cwd=app
    )
    assert trusted.code == 0, trusted.err
    assert (app / "orders" / "task-ran").exists()


def test_builtin_template_change_reaches_an_old_service(
    app: Path, lsq: Lsq, tmp_path: Path
) -> None:
    # A private copy of the built-ins, so a "new release" can be made here.
    builtins = tmp_path / "builtin"
    shutil.copytree(BUILTIN / "python", builtins / "python")
    cache = tmp_path / "cache"
    env = {"LSQ_TEMPLATES_DIR": str(builtins), "LSQ_CACHE_DIR": str(cache)}
    (builtins / "python" / "VERSION").write_text("1.0.0\n")
    assert lsq("new", "orders", "--no-install", cwd=app, env=env).code == 0
    svc = app / "orders"
    readme = svc / "README.md"
    readme.write_text(readme.read_text() + "\nOur own notes.\n")

    main = builtins / "python" / "app" / "migrations.py"
    main.write_text(
        main.read_text().replace("Append; never edit", "Append only; never edit")
    )
    (builtins / "python" / "VERSION").write_text("1.1.0\n")
    row = _status(lsq, app, env)["orders"]
    assert (row["template"], row["version"], row["latest"]) == (
        "python",
        "1.0.0",
        "1.1.0",
    )

    result = lsq("template", "update", "--all", "--no-install", cwd=app, env=env)
    assert result.code == 0, result.err
    assert "orders: 1.0.0 -> 1.1.0" in result.out
    assert "Append only; never edit" in (svc / "app" / "migrations.py").read_text()
    assert readme.read_text().endswith("Our own notes.\n")
    assert _status(lsq, app, env)["orders"]["behind"] is False
    assert not os.path.exists(svc / ".git")
