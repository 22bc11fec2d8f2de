"""${VAR} interpolation."""

from __future__ import annotations

import pytest

from lsq.manifest._interpolate import Expansion, InterpolationError, expand

ENV = {"A": "alpha", "EMPTY": "", "B": "beta"}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("plain", "plain"),
        ("${A}", "alpha"),
        ("x${A}y${B}z", "xalphaybetaz"),
        ("${MISSING:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${A:-fallback}", "alpha"),
        ("${MISSING:-${B}}", "beta"),
        ("${MISSING:-}", ""),
        ("$$", "$"),
        ("$${A}", "${A}"),
        ("$HOME and $1", "$HOME and $1"),
        ("cost: 5$", "cost: 5$"),
        ("a}b", "a}b"),
    ],
)
def test_expands(text: str, value: str) -> None:
    assert expand(text, ENV.get).value == value


def test_reports_used_and_missing_names() -> None:
    assert expand("${A} ${NOPE} ${EMPTY}", ENV.get) == Expansion(
        "alpha  ", used=("A", "EMPTY"), missing=("NOPE",)
    )


def test_default_is_not_evaluated_when_the_variable_is_set() -> None:
    assert expand("${A:-${NOPE}}", ENV.get).missing == ()


@pytest.mark.parametrize(
    ("text", "offset", "words"),
    [
        ("echo ${A", 5, "unclosed"),
        ("${A:-x", 0, "unclosed"),
        ("${}", 0, "expected a variable name"),
        ("x ${1A}", 2, "expected a variable name"),
        ("${A B}", 3, "unexpected ' '"),
    ],
)
def test_bad_syntax_says_where(text: str, offset: int, words: str) -> None:
    with pytest.raises(InterpolationError) as info:
        expand(text, ENV.get)
    assert info.value.offset == offset
    assert words in info.value.message
