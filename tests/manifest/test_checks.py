"""Load-time checks: each error is one line `file:line:col: ...; fix`, and
`lsq validate` / `lsq up` exit with 2 and start nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from lsq.errors import ManifestError
from lsq.manifest import AppConfig

Load = Callable[..., AppConfig]
LSQ = str(Path(sys.executable).parent / "lsq")


def _error(load_app: Load, text: str, **kwargs: object) -> str:
    with pytest.raises(ManifestError) as info:
        load_app(text, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def _warning(load_app: Load, text: str, **kwargs: object) -> str:
    """The one warning about a program that cannot be found (not an error:
    `lsq up` starts the rest and marks that service failed)."""
    app = load_app(text, **kwargs)
    found = [w for w in app.warnings if "program" in w]
    assert len(found) == 1, app.warnings
    return found[0]


def _cli(folder: Path, text: str, command: str = "validate") -> str:
    (folder / "lsq.yaml").write_text(
        textwrap.dedent(text).lstrip("\n"), encoding="utf-8"
    )
    done = subprocess.run(
        [LSQ, command],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


# 1. env_file as a scalar


def test_missing_scalar_env_file_points_at_the_value(load_app: Load) -> None:
    message = _error(
        load_app,
        """
        services:
          a:
            command: run
            env_file: missing.env
        """,
    )
    assert message.startswith("lsq.yaml:4:15: env_file 'missing.env' not found")
    assert message.endswith("; create the file or remove it from env_file")


def test_missing_env_file_in_a_list_still_points_at_the_item(load_app: Load) -> None:
    message = _error(
        load_app,
        """
        services:
          a:
            command: run
            env_file: [ok.env, missing.env]
        """,
        files={"ok.env": "A=1\n"},
    )
    assert message.startswith("lsq.yaml:4:24: env_file 'missing.env' not found")


# 2. service names and empty service entries


@pytest.mark.parametrize(
    ("key", "col"),
    [("Bad", 3), ("wéb☃", 3), ("-x", 3)],
)
def test_bad_service_name_points_at_its_key(load_app: Load, key: str, col: int) -> None:
    message = _error(
        load_app,
        f"""
        services:
          good:
            command: run
          {key}:
            command: run
        """,
    )
    assert message.startswith(f"lsq.yaml:4:{col}: services: expected a service name")
    assert f"found {key!r}; rename the service" in message


def test_empty_service_entry_points_at_its_key(load_app: Load) -> None:
    message = _error(
        load_app,
        """
        services:
          b:
            command: run
          a:

        # a comment at the end
        """,
    )
    assert message == (
        "lsq.yaml:4:3: services.a: expected a mapping, found nothing; "
        "indent its keys under a:, such as command: or external:"
    )


# 3. the program a command runs


def test_list_command_with_a_missing_program(load_app: Load) -> None:
    message = _warning(
        load_app,
        """
        services:
          a:
            command: [definitely-not-a-command, x]
        """,
    )
    assert message.startswith(
        "lsq.yaml:3:15: services.a.command: program 'definitely-not-a-command' "
        "not found on PATH; install it or give its path"
    )


def test_string_command_with_a_missing_program(load_app: Load) -> None:
    message = _warning(
        load_app,
        """
        services:
          a:
            command: definitely-not-a-command --flag
        """,
    )
    assert message.startswith(
        "lsq.yaml:3:14: services.a.command: program 'definitely-not-a-command' "
        "not found on PATH; install it or give its path"
    )


def test_exec_word_is_checked(load_app: Load) -> None:
    message = _warning(
        load_app,
        """
        services:
          b:
            command: exec also-not-a-command --flag
        """,
    )
    assert "program 'also-not-a-command' not found on PATH" in message


@pytest.mark.parametrize(
    "command",
    [
        "cd sub && ./x",
        "test -f x || echo no",
        "[ -f x ] && run",
        "FOO=1 not-checked-here",
        "exec run --port $PORT",
        "true",
        "if true; then run; fi",
        "{ run; }",
        "(run)",
        ". ./env.sh; run",
        "while true; do run; done",
    ],
)
def test_shell_words_and_unknowable_programs_are_not_checked(
    load_app: Load, command: str
) -> None:
    app = load_app(f"services:\n  a:\n    command: {command!r}\n")
    assert app.services["a"].command == command


def test_program_with_a_slash_is_found_from_the_services_cwd(
    load_app: Load, tmp_path: Path
) -> None:
    (tmp_path / "sub").mkdir()
    script = tmp_path / "sub" / "serve.sh"
    script.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    script.chmod(0o755)
    app = load_app("services:\n  a:\n    cwd: sub\n    command: [./serve.sh]\n")
    assert app.services["a"].command == ["./serve.sh"]
    message = _warning(load_app, "services:\n  a:\n    command: [./serve.sh]\n")
    assert message.startswith(
        "lsq.yaml:3:15: services.a.command: program './serve.sh' not found "
        f"(looked for {tmp_path / 'serve.sh'})"
    )
    script.chmod(0o644)
    message = _warning(
        load_app, "services:\n  a:\n    cwd: sub\n    command: ./serve.sh -v\n"
    )
    assert message.startswith(
        "lsq.yaml:4:14: services.a.command: program './serve.sh' is not executable;"
    )


def test_a_cwd_that_is_not_a_folder_is_warned_of_with_its_place(
    load_app: Load, tmp_path: Path
) -> None:
    # `lsq validate` passed it silently, and `lsq up -d` then failed.
    (tmp_path / "file").write_text("")
    for cwd, what in (("api", "does not exist"), ("file", "is not a folder")):
        app = load_app(f"services:\n  a:\n    command: [./serve.sh]\n    cwd: {cwd}\n"
                       "  b:\n    command: run\n")
        assert app.warnings == ((
            f"lsq.yaml:4:10: services.a.cwd: '{cwd}' {what} (looked for {tmp_path / cwd}); "
            "create it or fix the path (lsq up will mark a failed)"
        ),)
    (tmp_path / "api").mkdir()
    assert load_app("services:\n  a:\n    command: run\n    cwd: api\n").warnings == ()
    # A name too long for the file system is a folder that does not exist.
    app = load_app("services:\n  a:\n    command: [./x]\n    cwd: " + "a" * 300 + "\n")
    assert app.warnings[0].startswith(
        "lsq.yaml:4:10: services.a.cwd: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa... does not exist")


def test_program_is_looked_up_on_the_services_own_path(
    load_app: Load, tmp_path: Path
) -> None:
    folder = tmp_path / "tools"
    folder.mkdir()
    program = folder / "only-here"
    program.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    program.chmod(0o755)
    _warning(load_app, "services:\n  a:\n    command: only-here\n")
    app = load_app(
        f"services:\n  a:\n    command: only-here\n    env: {{PATH: {folder}}}\n"
    )
    assert app.services["a"].command == "only-here"


@pytest.mark.parametrize(
    ("command", "found"), [("[]", "an empty list"), ('""', '""'), ('"  "', '""')]
)
def test_empty_command_is_an_error(load_app: Load, command: str, found: str) -> None:
    message = _error(load_app, f"services:\n  a:\n    command: {command}\n")
    assert message.startswith(
        f"lsq.yaml:3:5: services.a.command: expected a command to run, found {found}; "
    )


# 4. depends_on: healthy without a health check


def test_healthy_condition_needs_a_health_check(load_app: Load) -> None:
    message = _error(
        load_app,
        """
        services:
          db: {command: db}
          api:
            command: api
            depends_on: {db: healthy}
        """,
    )
    assert message == (
        "lsq.yaml:5:22: services.api.depends_on.db: condition healthy needs a "
        "health check on db, found none; add health: to db, or use condition: started"
    )


def test_healthy_condition_on_an_external_service_is_an_error(load_app: Load) -> None:
    message = _error(
        load_app,
        """
        services:
          pay: {external: "https://pay.example.test"}
          api:
            command: api
            depends_on:
              pay: healthy
        """,
    )
    assert message.startswith(
        "lsq.yaml:6:12: services.api.depends_on.pay: condition healthy needs a "
        "health check on pay, found an external service"
    )
    assert message.endswith("; use condition: started")


def test_list_depends_on_still_resolves_without_a_health_check(load_app: Load) -> None:
    app = load_app(
        "services:\n  db: {command: db}\n  api: {command: api, depends_on: [db]}\n"
    )
    assert app.services["api"].depends_on == {"db": "started"}


# 5. port and replicas are strict integers


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            'port: "8080"',
            (
                "lsq.yaml:4:11: services.a.port: expected an integer, found '8080'; "
                "write the number without quotes: port: 8080"
            ),
        ),
        (
            "replicas: '2'",
            (
                "lsq.yaml:4:15: services.a.replicas: expected an integer, "
                "found '2'; write the number without quotes: replicas: 2"
            ),
        ),
        (
            "port: 80.5",
            (
                "lsq.yaml:4:11: services.a.port: expected an integer, found 80.5; "
                "write a number from 1 to 65535, or leave port out to have one assigned"
            ),
        ),
    ],
)
def test_quoted_port_and_replicas_are_refused(
    load_app: Load, line: str, expected: str
) -> None:
    message = _error(load_app, f"services:\n  a:\n    command: run\n    {line}\n")
    assert message == expected


def test_interpolated_plain_port_is_still_a_number(load_app: Load) -> None:
    app = load_app(
        "services:\n  a:\n    command: run\n    port: ${P:-8001}\n    replicas: ${R}\n",
        environ={"R": "3"},
    )
    assert (app.services["a"].port, app.services["a"].replicas) == (8001, 3)


# 6. per-instance variables are left for the instance


def test_instance_variables_in_commands_are_left_as_written(load_app: Load) -> None:
    app = load_app(
        """
        services:
          a:
            command: [run, "${PORT}", "$PORT", "${LSQ_INSTANCE}", "${DATABASE_URL:-x}", "${HOME}"]
            health: {command: "probe ${PORT} ${OTEL_SERVICE_NAME}"}
          b:
            command: run --port ${PORT} --otel ${OTEL_EXPORTER_OTLP_ENDPOINT}
            env: {X: "${PORT}"}
        """,
        environ={"PORT": "1", "HOME": "/h"},
    )
    assert app.services["a"].command == [
        "run",
        "${PORT}",
        "$PORT",
        "${LSQ_INSTANCE}",
        "${DATABASE_URL:-x}",
        "/h",
    ]
    assert app.services["a"].health is not None
    assert app.services["a"].health.command == "probe ${PORT} ${OTEL_SERVICE_NAME}"
    assert app.services["b"].command == (
        "run --port ${PORT} --otel ${OTEL_EXPORTER_OTLP_ENDPOINT}"
    )
    assert app.services["b"].env["X"] == "1"  # outside commands: the caller's value
    assert app.warnings == ()


def test_a_kept_variable_still_has_its_syntax_checked(load_app: Load) -> None:
    message = _error(load_app, "services:\n  a:\n    command: run ${PORT\n")
    assert "unclosed '${'" in message


# The CLI: exit 2, one line on stderr, nothing started


@pytest.mark.parametrize(
    ("text", "start"),
    [
        (
            "services:\n  a:\n    command: run\n    env_file: missing.env\n",
            "lsq.yaml:4:15: ",
        ),
        ("services:\n  Bad:\n    command: run\n", "lsq.yaml:2:3: "),
        ("services:\n  a:\n", "lsq.yaml:2:3: "),
        ("services:\n  a:\n    command: []\n", "lsq.yaml:3:5: "),
        (
            (
                "services:\n  db: {command: run}\n  api:\n    command: run\n"
                "    depends_on: {db: healthy}\n"
            ),
            "lsq.yaml:5:22: ",
        ),
        ('services:\n  a:\n    command: run\n    port: "8080"\n', "lsq.yaml:4:11: "),
    ],
)
def test_cli_validate_reports_one_line_and_exits_2(
    tmp_path: Path, text: str, start: str
) -> None:
    line = _cli(tmp_path, text)
    assert line.startswith(f"lsq: error: {start}"), line


def test_cli_validate_warns_of_a_missing_program_with_its_place(tmp_path: Path) -> None:
    (tmp_path / "lsq.yaml").write_text(
        "services:\n  a:\n    command: [definitely-not-a-command]\n", encoding="utf-8"
    )
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lsq")), "validate"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0
    assert "lsq: warning: lsq.yaml:3:15: services.a.command: program " in done.stderr
    assert "(lsq up will mark a failed)" in done.stderr


# Text no program can be given: found when the manifest is checked, not at the start.


@pytest.mark.parametrize(
    ("lines", "place", "escape"),
    [
        ('    command: "sleep 1"\n    env:\n      X: "a\\0b"\n', "5:10", "\\0"),
        ('    command: "sleep \\ud800"\n', "3:14", "\\ud800"),
        ('    command: [sleep, "\\0"]\n', "3:22", "\\0"),
        ('    command: sleep 1\n    env:\n      "X\\udfff": "1"\n', "5:7", "\\udfff"),
        ('    command: sleep 1\n    cwd: "a\\0"\n', "4:10", "\\0"),
        ('    command: sleep 1\n    depends_on: ["b\\0"]\n', "4:18", "\\0"),
        ('    command: sleep 1\n    env:\n      X: "\\ude00\\ud83d"\n', "5:10", "\\ude00"),
    ],
)
def test_a_nul_or_unpaired_surrogate_is_refused(
    tmp_path: Path, lines: str, place: str, escape: str
) -> None:
    line = _cli(tmp_path, "services:\n  a:\n" + lines)
    assert line.startswith(f"lsq: error: lsq.yaml:{place}: services.a.")
    assert f"({escape})" in line and line.endswith(f"remove the {escape} (however it is written)")


def test_an_undecodable_byte_from_the_environment_is_still_text(load_app: Load) -> None:
    # os.environ holds a byte that is not UTF-8 as a surrogate; it goes back
    # to the same byte when passed on, so it is not refused.
    app = load_app("services:\n  a:\n    command: sleep 1\n    env:\n      X: ${V}\n",
                   environ={"V": "caf\udce9"})
    assert app.env["a"]["X"] == "caf\udce9"


def test_a_nul_in_a_key_is_shown_escaped(tmp_path: Path) -> None:
    line = _cli(tmp_path, 'services:\n  a:\n    command: sleep 1\n    env:\n      "A\\0B": x\n')
    assert "\0" not in line
    assert line.startswith("lsq: error: lsq.yaml:5:7: services.a.env.A\\x00B: ")


def test_an_escaped_surrogate_pair_is_one_character(load_app: Load) -> None:
    # As JSON writes an emoji; a JSON file is YAML 1.2.
    app = load_app('{"services": {"a": {"command": "sleep 1", "env": {"X": "hi \\ud83d\\ude00"}}}}')
    assert app.env["a"]["X"] == "hi \U0001F600"


def test_extension_fields_are_not_checked(load_app: Load) -> None:
    app = load_app('x-a: "\\0"\n"x-\\ud800": 1\nservices:\n  a:\n    command: sleep 1\n')
    assert list(app.services) == ["a"]


@pytest.mark.parametrize("version", ["1.3", "1.0", "1.10", "2.0"])
def test_an_unknown_yaml_version_is_one_error_line(tmp_path: Path, version: str) -> None:
    line = _cli(tmp_path, f"# app\n%YAML {version}\n---\nservices:\n  a:\n    command: sleep 1\n")
    assert line == (
        f"lsq: error: lsq.yaml:2:1: expected %YAML 1.2 (or 1.1), found %YAML {version}; "
        "write %YAML 1.2, or leave the line out"
    )


# A file that is not UTF-8 text, or holds a character YAML does not allow.


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"services:\n  a:\n    command: sleep 1 caf\xe9\n",
         "lsq.yaml:3:25: expected UTF-8 text, found the byte 0xe9; save the file as UTF-8"),
        ("services:\n  a:\n    command: sleep 1\n".encode("utf-16"),
         "lsq.yaml:1:1: expected UTF-8 text, found UTF-16 (its byte-order mark); "
         "save the file as UTF-8"),
        (b"services:\n  a:\n    command: \"sl\xc3\xa9ep \x01 1\"\n",
         "lsq.yaml:3:21: expected printable text, found the character U+0001; "
         "remove it, or write \\x01 inside double quotes"),
        (b"services:\n  a:\n    command: sleep\x00 1\n",
         "lsq.yaml:3:19: expected printable text, found the character U+0000; remove it"),
        ("services:\n  a:\n    command: x\n    env:\n      A: \"a\x85b\"\n".encode(),
         "lsq.yaml:5:12: expected text without U+0085, which YAML 1.1 read as a line break; "
         "remove it, or write \\u0085 inside double quotes"),
        (b"services:\r  a:\r    command: x\r    env:\r      A: caf\xe9\r",  # CR line ends
         "lsq.yaml:5:13: expected UTF-8 text, found the byte 0xe9; save the file as UTF-8"),
        ("services:\n  a:\n    command: sleep 1\n".encode("utf-16-le"),
         "lsq.yaml:1:1: expected UTF-8 text, found what looks like UTF-16 (every other byte is 0); "
         "save the file as UTF-8"),
        (b"\xef\xbb\xbfname: caf\xe9\nservices:\n  a:\n    command: sleep 1\n",
         "lsq.yaml:1:10: expected UTF-8 text, found the byte 0xe9; save the file as UTF-8"),
        (b"\xef\xbb\xbfname: \"x\x01\"\nservices:\n  a:\n    command: sleep 1\n",
         "lsq.yaml:1:9: expected printable text, found the character U+0001; "
         "remove it, or write \\x01 inside double quotes"),
    ],
)
def test_a_file_that_is_not_text_gets_a_place(tmp_path: Path, data: bytes, expected: str) -> None:
    (tmp_path / "lsq.yaml").write_bytes(data)
    done = subprocess.run([LSQ, "validate"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr == f"lsq: error: {expected}\n"


def test_an_env_file_that_is_not_utf8_gets_a_place(load_app: Load, tmp_path: Path) -> None:
    (tmp_path / "e.env").write_bytes(b"A=1\nB=caf\xe9\n")
    message = _error(load_app, "services:\n  a:\n    command: sleep 1\n    env_file: e.env\n")
    assert message.startswith("e.env:2:6: expected UTF-8 text, found the byte 0xe9")


def test_an_env_file_may_start_with_a_byte_order_mark(load_app: Load, tmp_path: Path) -> None:
    (tmp_path / "e.env").write_bytes(b"\xef\xbb\xbfA=1\n")
    app = load_app("services:\n  a:\n    command: sleep 1\n    env_file: e.env\n")
    assert app.env["a"] == {"A": "1"}


def test_an_env_file_saved_as_utf16_without_a_mark_is_named(load_app: Load, tmp_path: Path) -> None:
    (tmp_path / "e.env").write_bytes("A=1\nB=x\n".encode("utf-16-le"))
    message = _error(load_app, "services:\n  a:\n    command: sleep 1\n    env_file: e.env\n")
    assert message.startswith("e.env:1:1: expected UTF-8 text, found what looks like UTF-16")


def test_a_program_several_services_share_is_checked_once_and_each_is_warned(
    load_app: Load,
) -> None:
    # Services often run the same program: it is looked up once per load, and
    # once per cache check (`programs` lists each program, folder and PATH
    # once), yet a missing one still warns at each service's own line.
    manifest = (
        "services:\n"
        "  a:\n    command: [run, a.py]\n"
        "  b:\n    command: run b.py\n"
        "  c:\n    command: [serve]\n"
        "  d:\n    command: [gone-program]\n"
        "  e:\n    command: [gone-program, -v]\n"
    )
    app = load_app(manifest)
    programs = [program for program, _, _ in app.programs]
    assert sorted(programs) == ["gone-program", "run", "serve"]
    lines = [w.split(": ", 1)[0] for w in app.warnings if "gone-program" in w]
    assert lines == ["lsq.yaml:9:15", "lsq.yaml:11:15"]
