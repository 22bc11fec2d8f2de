"""The .env grammar."""

from __future__ import annotations

import pytest

from lsq.errors import ManifestError, Mark
from lsq.manifest._dotenv import parse_dotenv

ENV = {"HOME_DIR": "/home/me"}


def parse(text: str) -> dict[str, str]:
    return parse_dotenv(text, ".env", ENV.get).as_dict()


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("K=abc#123", "abc#123"),  # row B23
        ("K=hello # comment", "hello"),
        ('K="x # y"', "x # y"),
        ("K='lit'", "lit"),
        ('K="a\\"b"', 'a"b'),
        ("K=  spaced value  ", "spaced value"),
        ("K =  v", "v"),
        ("export K=v", "v"),
        ("K=", ""),
        ('K=""', ""),
        ("K=#not-a-comment", "#not-a-comment"),
        ("K= #a-comment", ""),
        (
            'K="tab\\there\\nnew \\\\ \\$HOME_DIR \\q"',
            "tab\there\nnew \\ $HOME_DIR \\q",
        ),
        ('K="${HOME_DIR}/x"', "/home/me/x"),
        ("K=${HOME_DIR}/x", "/home/me/x"),
        ("K='${HOME_DIR} \\n'", "${HOME_DIR} \\n"),
        ('K="$${HOME_DIR}"', "${HOME_DIR}"),
        ('K="v" # trailing comment', "v"),
        ("K=a=b", "a=b"),
    ],
)
def test_value_forms(line: str, value: str) -> None:
    assert parse(line + "\n") == {"K": value}


def test_comments_blank_lines_and_later_wins() -> None:
    text = "# header\n\n   # indented comment\nA=1\nB=2\nA=3\n"
    assert parse(text) == {"A": "3", "B": "2"}


def test_multiline_double_quoted_value() -> None:
    text = 'KEY="-----BEGIN-----\nabc\n-----END-----"\nNEXT=1\n'
    dotenv = parse_dotenv(text, ".env", ENV.get)
    assert dotenv.as_dict() == {
        "KEY": "-----BEGIN-----\nabc\n-----END-----",
        "NEXT": "1",
    }
    assert dotenv.entries[1].mark == Mark(".env", 4, 1)


def test_earlier_keys_interpolate_before_the_environment() -> None:
    assert parse("HOME_DIR=/srv\nDATA=${HOME_DIR}/data\n")["DATA"] == "/srv/data"


def test_crlf_line_endings() -> None:
    assert parse("A=1\r\nB='2'\r\n") == {"A": "1", "B": "2"}


def test_undefined_variable_warns() -> None:
    dotenv = parse_dotenv("A=x\nB=${NOPE}\n", "app.env", ENV.get)
    assert dotenv.as_dict()["B"] == ""
    (warning,) = dotenv.warnings
    assert warning.startswith("app.env:2:3: variable NOPE is not set")


@pytest.mark.parametrize(
    ("text", "place", "words"),
    [
        ("A=1\nJUST_A_WORD\n", ".env:2:1", "expected KEY=value, found 'JUST_A_WORD'"),
        ("  1BAD=x\n", ".env:1:3", "expected KEY=value"),
        ("BAD KEY=x\n", ".env:1:1", "expected KEY=value"),
        ('A="open\nB=2\n', ".env:1:3", "unclosed double quote"),
        ("A='open\n", ".env:1:3", "unclosed single quote"),
        ('A="x" y\n', ".env:1:6", "unexpected text after the closing quote: 'y'"),
        ("A=${B\n", ".env:1:3", "unclosed '${'"),
    ],
)
def test_bad_lines_name_file_line_col(text: str, place: str, words: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse(text)
    message = str(info.value)
    assert message.startswith(place + ": "), message
    assert words in message
    assert "\n" not in message
