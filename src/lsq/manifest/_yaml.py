"""YAML reading with positions.

ruamel.yaml composes the file (YAML 1.2) into a node graph; we build our own
`Node` tree from that graph instead of using ruamel's constructor. The graph
keeps, for every scalar, the text as written, its quoting style and where it
starts, including for plain `true`, `1.10` or an empty value, which the
constructed Python objects no longer carry. Building the tree ourselves also
lets us report duplicate keys at the duplicate and define how `<<` merges
an `env` map (key by key, see docs/manifest.md).

The composer is ruamel's plain (`safe`) pipeline: the round-trip one also
gathers comments, which we never read, and costs a quarter more. Where
ruamel.yaml.clib is installed, its C scanner and parser compose the file
(a 50-service manifest in 2.5 ms instead of 16 ms, on the way to the first
service start). It only sees plain text, though: a file with what the two
read differently (tabs, YAML 1.1 line breaks, directives, tags, see
`_C_UNSAFE`), with long lines or many brackets (the C composer recurses on
the machine's stack), or one it refuses goes through the pure Python
pipeline, which reports any error. Both then give the same tree but for
where an empty value is: right after its key in C, at the next token in
Python (tests/manifest/test_yaml_parsers.py).
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field, replace

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning, YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.nodes import Node as YamlNode
from ruamel.yaml.reader import ReaderError

from lsq.errors import ManifestError, Mark

Scalar = str | int | float | bool | None

_TAG = "tag:yaml.org,2002:"
_MERGE = _TAG + "merge"
_CORE_TAGS = {_TAG + name for name in ("str", "int", "float", "bool", "null")}
# Alias expansion can blow up a small file ("billion laughs"); no real
# manifest comes near this many nodes.
_MAX_NODES = 200_000

# Paths (from the top of the file) whose mappings merge key by key, both for
# `<<` inside a service and for override files onto the base file.
ENV_KEY = "env"


@dataclass
class Node:
    """A value read from YAML, with where it was written.

    `value` is a plain scalar (typed by the YAML 1.2 core schema), a dict of
    child nodes or a list of child nodes. For a scalar, `text` is the source
    text of a plain scalar, or the decoded text of a quoted or block one;
    `style` is None (plain), "'", '"', "|" or ">".
    """

    mark: Mark
    value: Scalar | dict[str, Node] | list[Node]
    text: str = ""
    style: str | None = None
    end: Mark | None = None
    key_mark: Mark | None = field(default=None, compare=False)

    @property
    def place(self) -> Mark:
        """Where to point for this entry: its key if it has one."""
        return self.key_mark or self.mark

    def child(self, key: str | int) -> Node | None:
        if isinstance(self.value, dict) and isinstance(key, str):
            return self.value.get(key)
        if isinstance(self.value, list) and isinstance(key, int):
            return self.value[key] if 0 <= key < len(self.value) else None
        if isinstance(self.value, list) and isinstance(key, str):
            # A list that pydantic turned into a dict (depends_on: [db]).
            for item in self.value:
                if item.value == key:
                    return item
        return None


# The C composer recurses on the machine's stack, which some 30,000 levels of
# nesting overflow (a crash, not an error). Flow collections nest by brackets,
# block ones by indentation or by `- ` and `? ` on one line: with few brackets
# and short lines, nesting stays in the low thousands.
_C_MAX_BRACKETS = 5_000
_C_MAX_LINE = 2_000
# What the two composers read differently, so the C one never sees it: tabs,
# the line breaks of YAML 1.1 (NEL, LS, PS), a byte-order mark after the start,
# directives and document ends, tags, `#` right after a block scalar's header.
_C_UNSAFE = re.compile(r"[\t\x85\u2028\u2029\ufeff]|^%|^\.\.\.|(?:^|[\s\[{,])!|[|>][-+0-9]*#", re.M)


def _c_may_read(text: str) -> bool:
    body = text[1:] if text.startswith("\ufeff") else text
    return (
        body.count("[") + body.count("{") <= _C_MAX_BRACKETS
        and max(map(len, body.splitlines()), default=0) <= _C_MAX_LINE
        and _C_UNSAFE.search(body) is None
    )


def compose(text: str, *, pure: bool = False) -> YamlNode | None:
    """ruamel's node graph of `text` (YAML 1.2): from the C composer where it
    is installed and the text is plain enough (`_c_may_read`), else from the
    pure Python one, whose errors are the ones reported."""
    if not pure and _c_may_read(text):
        try:
            return _compose(text, pure=False)
        except Exception:  # noqa: BLE001 - not installed, or not taken: the pure one says why
            pass
    return _compose(text, pure=True)


def _compose(text: str, *, pure: bool) -> YamlNode | None:
    yaml = YAML(typ="safe", pure=pure)
    yaml.version = (1, 2)
    with warnings.catch_warnings():
        # Re-using an anchor name is valid YAML; later aliases see the
        # later definition.
        warnings.simplefilter("ignore", ReusedAnchorWarning)
        return yaml.compose(text)


# A `%YAML` directive; ruamel reads 1.1 and 1.2 (it asserts on other 1.x).
_VERSION_DIRECTIVE = re.compile(r"^\ufeff?%YAML[ \t]+([0-9]+\.[0-9]+)(?=[ \t\r]|$)", re.M)


# YAML 1.2 reads these as ordinary characters; ruamel's reader breaks lines at them.
_OLD_BREAKS = re.compile("[\x85\u2028\u2029]")


def parse(text: str, file: str, *, override: bool = False, pure: bool = False) -> Node | None:
    """Parse one YAML document; None for an empty file."""
    _check_version(text, file)
    old_break = _OLD_BREAKS.search(text)
    if old_break is not None:  # refused rather than read other than the spec says
        code = ord(old_break.group())
        raise ManifestError(
            f"expected text without U+{code:04X}, which YAML 1.1 read as a line break",
            mark=Mark(file, *place_of(text[: old_break.start()])),
            fix=f"remove it, or write \\u{code:04x} inside double quotes",
        )
    try:
        root = compose(text, pure=pure)
    except MarkedYAMLError as exc:
        raise _syntax_error(exc, file, override=override) from exc
    except ReaderError as exc:  # a character YAML does not allow, unescaped
        code = ord(text[exc.position])
        escape = f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
        raise ManifestError(
            f"expected printable text, found the character U+{code:04X}",
            mark=Mark(file, *place_of(text[: exc.position])),
            fix="remove it" if code == 0 else f"remove it, or write {escape} inside double quotes",
        ) from exc
    except YAMLError as exc:
        message = " ".join(str(exc).split())
        raise ManifestError(
            f"{file}: {message}", fix="fix the file's encoding"
        ) from exc
    except RecursionError:
        raise _too_deep(text, file) from None
    if root is None:
        return None
    try:
        return _Builder(file).build(root, ())
    except RecursionError:
        raise _too_deep(text, file) from None


def _check_version(text: str, file: str) -> None:
    # ruamel reads a `%` at the start of any line as a directive.
    for found in _VERSION_DIRECTIVE.finditer(text):
        if found.group(1) not in ("1.1", "1.2"):
            raise ManifestError(
                f"expected %YAML 1.2 (or 1.1), found %YAML {found.group(1)}",
                mark=Mark(file, place_of(text[: found.start()])[0], 1),
                fix="write %YAML 1.2, or leave the line out",
            )


def place_of(before: str) -> tuple[int, int]:
    """Line and column (from 1) of what follows `before`, the text from the
    start of a file, with YAML's line breaks (CR LF, CR, LF)."""
    lines = before.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return lines.count("\n") + 1, len(lines) - lines.rfind("\n")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _paired(text: str) -> str:
    """Two escapes of a surrogate pair as one character: JSON writes an emoji
    as `"\\ud83d\\ude00"`, and YAML 1.2 reads JSON, but ruamel gives each
    escape its own surrogate. One left unpaired stays (and is refused later)."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


_DEEP = 100  # levels of nesting from which one is named as too deep; none has a use


def _too_deep(text: str, file: str) -> ManifestError:
    """Reading recursed too deep: name where the nesting passes _DEEP
    levels. The parser's events come one at a time, so finding that place
    does not recurse."""
    from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent

    depth = 0
    try:
        for event in YAML(typ="safe", pure=True).parse(text):
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > _DEEP:
                    mark = event.start_mark
                    flow = bool(event.flow_style)
                    return ManifestError(
                        "expected values nested a few levels deep, found more than "
                        f"{_DEEP} levels of {'[ and {' if flow else 'indented blocks'} here",
                        mark=Mark(file, mark.line + 1, mark.column + 1),
                        fix="close what was opened: each [ with a ], each { with a }" if flow
                        else "check the indentation",
                    )
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    except (YAMLError, RecursionError):
        pass
    return ManifestError(  # deep through aliases, not in the text
        f"{file}: values are nested too deeply to read",
        fix="a manifest needs a few levels at most; check the anchors (&) and aliases (*)",
    )


def merge_override(base: Node, extra: Node) -> Node:
    """An override file onto the base: mappings merge by key, down to service
    fields and `env` keys; any other value is replaced as a whole."""
    return _merge(base, extra, ())


def _merge(base: Node, extra: Node, path: tuple[str, ...]) -> Node:
    if not (_merges_by_key(path) and _is_map(base) and _is_map(extra)):
        return replace(extra, key_mark=extra.key_mark or base.key_mark)
    assert isinstance(base.value, dict) and isinstance(extra.value, dict)
    merged = dict(base.value)
    for key, node in extra.value.items():
        if key in merged:
            merged[key] = _merge(merged[key], node, (*path, key))
        else:
            merged[key] = node
    return replace(base, value=merged)


def _merges_by_key(path: tuple[str, ...]) -> bool:
    if len(path) <= 1:  # the top level, `services`, `gateway`
        return True
    if path[0] != "services":
        return False
    return len(path) == 2 or (len(path) == 3 and path[2] == ENV_KEY)


def _is_map(node: Node) -> bool:
    return isinstance(node.value, dict)


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.count = 0
        self.active: set[int] = set()

    def mark(self, node: YamlNode) -> Mark:
        return Mark(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def end(self, node: YamlNode) -> Mark:
        return Mark(self.file, node.end_mark.line + 1, node.end_mark.column + 1)

    def build(self, node: YamlNode, path: tuple[str, ...]) -> Node:
        self.count += 1
        if self.count > _MAX_NODES:
            raise ManifestError(
                f"{_dotted(path)}: too many values after expanding aliases",
                mark=self.mark(node),
                fix="use fewer nested aliases",
            )
        if id(node) in self.active:
            raise ManifestError(
                f"{_dotted(path)}: an alias refers to the mapping that contains it",
                mark=self.mark(node),
                fix="an anchored value cannot contain an alias to itself",
            )
        self.active.add(id(node))
        try:
            return self._build(node, path)
        finally:
            self.active.discard(id(node))

    def _build(self, node: YamlNode, path: tuple[str, ...]) -> Node:
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if isinstance(node, SequenceNode):
            items = [
                self.build(item, (*path, str(i))) for i, item in enumerate(node.value)
            ]
            return Node(self.mark(node), items, end=self.end(node))
        assert isinstance(node, MappingNode)
        return self.mapping(node, path)

    def scalar(self, node: ScalarNode, path: tuple[str, ...]) -> Node:
        if node.tag not in _CORE_TAGS:
            raise ManifestError(
                f"{_dotted(path)}: unsupported tag {node.tag.replace(_TAG, '!!')}",
                mark=self.mark(node),
                fix="remove the tag; LSQ reads plain strings, numbers and booleans",
            )
        text = _paired(str(node.value))
        return Node(
            self.mark(node),
            _typed(node.tag, text),
            text=text,
            style=node.style or None,  # the C composer gives '' for plain
            end=self.end(node),
        )

    def mapping(self, node: MappingNode, path: tuple[str, ...]) -> Node:
        own: dict[str, Node] = {}
        sources: list[Node] | None = None
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                if sources is not None:
                    raise self.duplicate(key_node, "<<", path, None)
                sources = self.merge_sources(value_node, path, self.mark(key_node))
                continue
            key = self.key(key_node, path)
            if key in own:
                raise self.duplicate(key_node, key, path, own[key].key_mark)
            child = self.build(value_node, (*path, key))
            child.key_mark = self.mark(key_node)
            own[key] = child
        value = _apply_merge(own, sources or [])
        return Node(self.mark(node), value, end=self.end(node))

    def key(self, node: YamlNode, path: tuple[str, ...]) -> str:
        if not isinstance(node, ScalarNode):
            raise ManifestError(
                f"{_dotted(path)}: a key must be a plain name, found a "
                f"{'list' if isinstance(node, SequenceNode) else 'mapping'}",
                mark=self.mark(node),
                fix="write keys as plain names",
            )
        return _paired(str(node.value))

    def duplicate(
        self, node: YamlNode, key: str, path: tuple[str, ...], first: Mark | None
    ) -> ManifestError:
        where = f" (first at line {first.line})" if first else ""
        return ManifestError(
            f"{_dotted(path)}: duplicate key '{key}'{where}",
            mark=self.mark(node),
            fix="keep only one of them",
        )

    def merge_sources(
        self, node: YamlNode, path: tuple[str, ...], at: Mark
    ) -> list[Node]:
        # An alias has no place of its own in the composed graph (it *is* the
        # anchored node), so problems are reported at the `<<` key.
        items = node.value if isinstance(node, SequenceNode) else [node]
        sources = [self.build(item, path) for item in items]
        for source in sources:
            if not _is_map(source):
                raise ManifestError(
                    f"{_dotted(path)}: '<<' merges mappings, found a "
                    f"{'list' if isinstance(source.value, list) else 'scalar'}",
                    mark=at,
                    fix="write '<<: *name' or '<<: [*a, *b]' with anchored mappings",
                )
        return sources


def _apply_merge(own: dict[str, Node], sources: list[Node]) -> dict[str, Node]:
    # YAML's rule: the first listed source wins, keys written here win over
    # all. Ours adds: `env` mappings are combined key by key, same order.
    merged: dict[str, Node] = {}
    for source in sources:
        assert isinstance(source.value, dict)
        for key, node in source.value.items():
            if key not in merged:
                merged[key] = node
            elif key == ENV_KEY:
                merged[key] = _union(merged[key], node)
    for key, node in own.items():
        if key == ENV_KEY and key in merged:
            merged[key] = _union(node, merged[key])
        else:
            merged[key] = node
    return merged


def _union(winner: Node, loser: Node) -> Node:
    if not (_is_map(winner) and _is_map(loser)):
        return winner
    assert isinstance(winner.value, dict) and isinstance(loser.value, dict)
    return replace(winner, value={**loser.value, **winner.value})


def _typed(tag: str, text: str) -> Scalar:
    kind = tag.removeprefix(_TAG)
    if kind == "null":
        return None
    if kind == "bool":
        return text.lower() == "true"
    try:
        if kind == "int":
            return _int(text)
        if kind == "float":
            return _float(text)
    except ValueError:
        pass  # an explicit `!!int abc`: keep the text, the schema will say
    return text


def _int(text: str) -> int:
    clean = text.replace("_", "")
    if clean.lstrip("+-")[:2].lower() in ("0x", "0o", "0b"):
        return int(clean, 0)
    try:
        return int(clean, 10)
    except ValueError:
        if not clean.lstrip("+-").isdigit():
            raise
    # Past 4300 digits int() refuses text (a guard against slow conversions);
    # such a number is still a number, and is refused as too large.
    import decimal

    return int(decimal.Decimal(clean))


def _float(text: str) -> float:
    clean = text.replace("_", "").lower()
    if clean.lstrip("+-") in (".inf", ".nan"):
        value = math.inf if "inf" in clean else math.nan
        return -value if clean.startswith("-") else value
    return float(clean)


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path) if path else "top level"


_FIXES = {
    "found undefined alias": "define the anchor with &name before its first use",
    "found character '\\t'": "indent with spaces, not tabs",
    "found another document": "keep one document; remove the '---' line",
    "mapping values are not allowed": "quote a value that contains ': '",
}


def _syntax_error(exc: MarkedYAMLError, file: str, *, override: bool) -> ManifestError:
    mark = exc.problem_mark or exc.context_mark
    where = Mark(file, mark.line + 1, mark.column + 1) if mark else None
    problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
    context = exc.context if exc.problem and exc.context else None
    if context and exc.context_mark is not None:
        at = exc.context_mark
        problem += f" ({context} at {at.line + 1}:{at.column + 1})"
    fix = next(
        (f for k, f in _FIXES.items() if k in problem),
        "check the indentation and quoting here",
    )
    if override and "undefined alias" in problem:
        fix = "anchors can't be used across files; define the anchor in this file"
    return ManifestError(f"invalid YAML: {problem}", mark=where, fix=fix)
