"""The C composer (ruamel.yaml.clib) and the pure Python one read a manifest
alike: the same tree, with the same places (but for an empty value, which
the C one puts right after its key), or the same error. Every test in this
folder checks that too (conftest.both_yaml_parsers); these are the corners
of YAML that no manifest test needed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from yamlcheck import same_tree

from lsq.errors import ManifestError
from lsq.manifest import _yaml

LSQ = str(Path(sys.executable).parent / "lsq")

CASES = {
    "styles": "a: 'single'\nb: \"double \\t\"\nc: |\n  block\n  text\nd: >-\n  folded\n  text\ne: plain\n",
    "core schema": "a: yes\nb: NO\nc: 0700\nd: 1:30\ne: 1.10\nf: 0o17\ng: ~\nh: null\ni: .inf\nj: -.NaN\nk: 0x1F\n",
    "empty values": "a:\nb: ''\nc: []\nd: {}\n",
    "flow": "a: [1, [2, {b: c, d: [e]}], 'f']\ng: {h: i, j: [k, l]}\n",
    "anchors and merge": "x: &base {a: 1, b: 2}\ny:\n  <<: *base\n  b: 3\nz: [*base, *base]\n",
    "comments": "# top\na: 1  # after\n# between\nb:\n  - 2 # item\n",
    "crlf": "a: 1\r\nb:\r\n  c: two\r\n",
    "unicode": "name: caf\u00e9\nemoji: \"\\U0001F600\"\nkey \u00fc: v\n",
    "bom": "\ufeffa: 1\n",
    "directive 1.2": "%YAML 1.2\n---\na: yes\n",
    "document markers": "---\na: 1\n...\n",
    "explicit key": "? a\n: 1\n",
    "tags": "a: !!str 1\nb: !!int '2'\n",
    "long line": "a: " + "x" * 5000 + "\n",
    "indented sequence": "services:\n  web:\n    command:\n    - python\n    - -m\n    - http.server\n",
}

# What the C composer reads otherwise than the pure one: it never sees them.
DIFFERENT = {
    "tab after a colon": "a:\t1\n",
    "tab in a value": "a: b\tc\n",
    "yaml 1.1 directive": "%YAML 1.1\n---\na: no\n",
    "line separator": "a: 1 # note\u2028b: 2\n",
    "next line": "a: 1\x85b: 2\n",
    "bom inside": "a: 1\n\ufeff<<: {b: 2}\n",
    "empty tag": "a: !\n",
    "comment after a block header": "a: |# c\n  x\n",
    "document ends": "a: 1\n...\n...\n",
}

BROKEN = {
    "tab indent": "a:\n\tb: 1\n",
    "unclosed flow": "a: [1, 2\n",
    "unclosed quote": "a: 'x\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "bad indent": "a:\n  b: 1\n c: 2\n",
    "unknown alias": "a: *nope\n",
    "duplicate anchor use in key": "? &a [1]\n: *a\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_c_composer_reads_as_the_pure_one(name: str) -> None:
    text = CASES[name]
    assert same_tree(_yaml.parse(text, "lsq.yaml"), _yaml.parse(text, "lsq.yaml", pure=True))


def test_an_empty_value_is_placed_after_its_key() -> None:
    pytest.importorskip("_ruamel_yaml", reason="ruamel.yaml.clib is not installed")
    tree = _yaml.parse("a:\nb: 1\n", "lsq.yaml")
    assert tree is not None and isinstance(tree.value, dict)
    assert (tree.value["a"].mark.line, tree.value["a"].mark.col) == (1, 3)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_an_error_is_the_pure_composers(name: str) -> None:
    text = BROKEN[name]
    with pytest.raises(ManifestError) as pure:
        _yaml.parse(text, "lsq.yaml", pure=True)
    with pytest.raises(ManifestError) as either:
        _yaml.parse(text, "lsq.yaml")
    assert str(either.value) == str(pure.value)


def test_the_c_composer_is_used_where_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("_ruamel_yaml", reason="ruamel.yaml.clib is not installed")
    calls: list[bool] = []
    compose = _yaml._compose
    monkeypatch.setattr(_yaml, "_compose", lambda text, *, pure: calls.append(pure) or compose(text, pure=pure))
    _yaml.parse("a: 1\n", "lsq.yaml")
    assert calls == [False]


def test_deep_flow_nesting_takes_the_pure_composer() -> None:
    # Past _C_MAX_BRACKETS the C composer could overflow the stack; the pure
    # one reports the nesting as one error line.
    text = "a: " + "[" * 20_000 + "]" * 20_000 + "\n"
    with pytest.raises(ManifestError, match="^lsq.yaml:1:103: expected values nested a few levels deep"):
        _yaml.parse(text, "lsq.yaml")


@pytest.mark.parametrize("name", sorted(DIFFERENT))
def test_what_the_c_composer_reads_otherwise_goes_to_the_pure_one(name: str) -> None:
    text = DIFFERENT[name]
    assert not _yaml._c_may_read(text)
    try:
        pure = _yaml.parse(text, "lsq.yaml", pure=True)
    except ManifestError as exc:
        with pytest.raises(ManifestError, match=re.escape(str(exc))):
            _yaml.parse(text, "lsq.yaml")
    else:
        assert _yaml.parse(text, "lsq.yaml") == pure


@pytest.mark.parametrize("text", [
    "a:\n  " + "- " * 30_000 + "x\n",  # block nesting on one line
    "? " * 40_000 + "x\n",
    "a: " + "[" * 20_000 + "]" * 20_000 + "\n",
])
def test_deep_nesting_is_one_error_line_not_a_crash(tmp_path: Path, text: str) -> None:
    # In a process of its own: a stack overflow in C would kill this one.
    (tmp_path / "lsq.yaml").write_text("services:\n  a:\n    command: sleep 1\nx-" + text)
    done = subprocess.run([LSQ, "validate"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, (done.returncode, done.stderr[-500:])
    assert done.stderr.startswith("lsq: error: lsq.yaml:") and done.stderr.count("\n") == 1
