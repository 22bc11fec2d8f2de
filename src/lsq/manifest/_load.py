"""From `lsq.yaml` (plus overrides and `.env` files) to an `AppConfig`.

The steps, in order: read YAML with positions; merge override files onto it;
interpolate `${VAR}` and turn the tree into plain data, noting the origin of
every value; validate with the schema; read `.env` files and merge each
service's environment; drop the variables LSQ sets itself; check what spans
fields and services; resolve the default `depends_on` conditions.

`load(..., frozen=True)` checks with the compiled schema (`lsq.manifest._core`)
and never loads pydantic for a valid manifest; the models check the rest and
say what is wrong. Either way, errors are the models' and read the same.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lsq.errors import ManifestError, Mark
from lsq.manifest import _core
from lsq.manifest._cache import missing_program, source_digest
from lsq.manifest._config import AppConfig, Origin
from lsq.manifest._dotenv import Dotenv, parse_dotenv
from lsq.manifest._frozen import as_found, cut, replace
from lsq.manifest._interpolate import (
    Expansion,
    InterpolationError,
    Lookup,
    expand,
    is_instance_variable,
)
from lsq.manifest._names import env_name
from lsq.manifest._rules import NAME_PATTERN, restart_shorthand
from lsq.manifest._yaml import Node, merge_override, parse, place_of

if TYPE_CHECKING:  # a valid manifest loaded `frozen` needs no pydantic
    from pydantic import BaseModel
    from pydantic_core import ErrorDetails

    from lsq.manifest._schema import Manifest, Service

# With the gateway, a fixed `port` is the service's stable address and each
# replica listens on a private port, so this becomes valid. Flip it here.

Loc = tuple[str | int, ...]

# Fields whose values are strings whatever they look like: the text is taken
# as written, so `FLAG: true` or `VERSION: 1.10` stay "true" and "1.10".
_STRING_FIELDS = {
    ("name",),
    ("services", "*", "command"),
    ("services", "*", "command", "*"),
    ("services", "*", "cwd"),
    ("services", "*", "env", "*"),
    ("services", "*", "env_file"),
    ("services", "*", "env_file", "*"),
    ("services", "*", "external"),
    ("services", "*", "health", "http"),
    ("services", "*", "health", "command"),
    ("services", "*", "health", "command", "*"),
    ("services", "*", "routes", "*", "prefix"),
    ("gateway", "trusted_proxies", "*"),
}

# Commands, where `${PORT}` and the other per-instance variables are left for
# the instance (a shell expands them; LSQ does for an argv list).
_COMMAND_FIELDS = {
    ("services", "*", "command"),
    ("services", "*", "command", "*"),
    ("services", "*", "health", "command"),
    ("services", "*", "health", "command", "*"),
}


def _by_length(patterns: set[tuple[str, ...]]) -> dict[int, tuple[tuple[str, ...], ...]]:
    # `_matches` runs for every scalar of the manifest (hundreds for an app
    # of 50 services): it looks only at the patterns of the path's length.
    lengths: dict[int, list[tuple[str, ...]]] = {}
    for pattern in patterns:
        lengths.setdefault(len(pattern), []).append(pattern)
    return {n: tuple(found) for n, found in lengths.items()}


_STRING_BY_LENGTH = _by_length(_STRING_FIELDS)
_COMMAND_BY_LENGTH = _by_length(_COMMAND_FIELDS)

_INT = re.compile(r"^[-+]?[0-9]+$")


def load(
    path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Sequence[Path] = (),
    frozen: bool = False,
) -> AppConfig:
    """Read, interpolate, validate and check an app's manifest.

    `environ` is where `${VAR}` looks (default: `os.environ`); each file in
    `overrides` is merged onto the manifest in order. With `frozen`, the
    app's manifest is frozen (`AppConfig.frozen`). In the result, both
    `AppConfig.env[name]` and `manifest.services[name].env` hold the merged
    environment (`.env` files, then `env:`), without the variables LSQ sets.
    """
    path = Path(path).resolve()
    loader = _Loader(path, os.environ if environ is None else environ)
    tree = loader.read(path, override=False)
    for extra in overrides:
        tree = merge_override(tree, loader.read(Path(extra), override=True))
    data = loader.plain(tree, ())
    _check_names(tree)
    manifest = (frozen and _core.validate(data)) or _validate(data, tree)
    envs = {
        name: loader.service_env(name, svc, tree)
        for name, svc in manifest.services.items()
    }
    _check(manifest, tree)
    programs: list[tuple[str, str, str]] = []
    missing = _check_commands(manifest, tree, envs, path.parent, programs)
    manifest = _resolve(manifest, envs)
    warnings = tuple(dict.fromkeys([*loader.warnings, *missing]))
    app = AppConfig(
        path, manifest, envs, dict(loader.origins), warnings, tuple(overrides),
        dict(loader.sources), tuple(programs), tuple(sorted(loader.environ.read)),
    )
    return app.frozen() if frozen else app


class _Reads:
    """The environment as the loader sees it, noting each name it looks up
    (found or not): what a cached app depends on (`AppConfig.environ_read`)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.read: set[str] = {"PATH"}  # where each command's program is looked for

    def get(self, name: str, default: str | None = None) -> str | None:
        self.read.add(name)
        return self.environ.get(name, default)


class _Loader:
    def __init__(self, path: Path, environ: Mapping[str, str]) -> None:
        self.path = path
        self.root = path.parent
        self.environ = _Reads(environ)
        self.origins: dict[str, Origin] = {}
        self.warnings: list[str] = []
        self.sources: dict[str, str] = {}  # each file read: path -> content digest

    def display(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)

    def read(self, path: Path, *, override: bool) -> Node:
        name = self.display(path)
        try:
            text = _read_utf8(path, name)
        except FileNotFoundError:
            raise ManifestError(
                f"{name}: file not found", fix="check the path"
            ) from None
        except OSError as exc:
            raise ManifestError(
                f"{name}: cannot read: {exc}", fix="check the file"
            ) from exc
        self.sources[str(path.resolve())] = source_digest(text)
        tree = parse(text, name, override=override)
        if tree is None or not isinstance(tree.value, dict):
            raise ManifestError(
                f"expected a mapping with a services: key, found "
                f"{'nothing' if tree is None else type(tree.value).__name__}",
                mark=Mark(name, 1, 1) if tree is None else tree.mark,
                fix="start the file with 'services:'",
            )
        return tree

    # -- tree to plain data, with interpolation and origins

    def plain(self, node: Node, path: Loc) -> object:
        if path:
            where = node.place if isinstance(node.value, dict | list) else node.mark
            self.origins[_dotted(path)] = Origin("manifest", where)
            for key in _shorthand_keys(node, path):  # `restart: always` sets restart.policy
                self.origins[f"{_dotted(path)}.{key}"] = Origin("manifest", where)
        if _is_depends_list(node, path):
            for item in node.value:  # keyed by name, as the schema turns it
                _check_text(item.text, item, path)
                self.origins[f"{_dotted(path)}.{item.text}"] = Origin(
                    "manifest", item.mark
                )
            return [item.text for item in node.value]
        if isinstance(node.value, dict):
            for key, child in node.value.items():
                if path or not key.startswith("x-"):  # extensions are not read
                    _check_text(key, child, (*path, key), key=True)
            return {
                key: self.plain(child, (*path, key))
                for key, child in node.value.items()
                if path or not key.startswith("x-")
            }
        if isinstance(node.value, list):
            return [self.plain(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.scalar(node, path)

    def scalar(self, node: Node, path: Loc) -> object:
        string_field = _is_string_field(path)
        if string_field and node.value is not None:
            text = node.text
        elif isinstance(node.value, str):
            text = node.value
        elif path[-2:-1] == ("env",) and path[0] == "services":
            raise ManifestError(
                f"{_dotted(path)}: expected a value, found nothing",
                mark=node.place,
                fix=f'write a value, or "" for an empty one: {path[-1]}: ""',
            )
        else:
            return node.value
        _check_text(text, node, path)
        if node.style == "'":  # single quotes: literal, never interpolated
            return text
        expansion = self.expand(text, node, path)
        if expansion.used:
            self.origins[_dotted(path)] = Origin("environment", node.mark)
        # A plain `port: ${WEB_PORT:-8001}` is a number, as `port: 8001` is.
        plain = node.style is None and not string_field
        if plain and expansion.value != text and _INT.match(expansion.value):
            return int(expansion.value)
        return expansion.value

    def expand(self, text: str, node: Node, path: Loc) -> Expansion:
        keep = is_instance_variable if _matches(path, _COMMAND_BY_LENGTH) else None
        try:
            expansion = expand(text, self.environ.get, keep=keep)
        except InterpolationError as exc:
            raise ManifestError(
                f"{_dotted(path)}: {exc.message}",
                mark=_offset_mark(node, exc.offset),
                fix=exc.fix,
            ) from exc
        for name in expansion.missing:
            self.warnings.append(
                f"{node.mark}: {_dotted(path)}: variable {name} is not set and has "
                f"no default; it expands to an empty string; set it or write "
                f"${{{name}:-default}}"
            )
        return expansion

    # -- a service's environment

    def service_env(self, name: str, service: Service, tree: Node) -> dict[str, str]:
        env: dict[str, str] = {}
        places: dict[str, Mark] = {}
        listed = _find(tree, ("services", name, "env_file"))
        for index, entry in enumerate(service.env_file):
            node = (
                listed
                if listed and not isinstance(listed.value, list)
                else _find(tree, ("services", name, "env_file", index))
            )
            dotenv = self.dotenv(
                entry, node, lambda key: env.get(key, self.environ.get(key))
            )
            for item in dotenv.entries:
                env[item.key] = item.value
                places[item.key] = item.mark
                if item.key not in service.env:
                    origin = Origin("env_file", item.mark)
                    self.origins[f"services.{name}.env.{item.key}"] = origin
        env_node = _find(tree, ("services", name, "env"))
        for key, value in service.env.items():
            env[key] = value
            places[key] = _place(env_node, key)
        for key in _reserved(service):
            if key in env:
                del env[key]
                self.origins.pop(f"services.{name}.env.{key}", None)
                self.warnings.append(_reserved_warning(key, name, service, places[key]))
        return env

    def dotenv(self, entry: str, node: Node | None, lookup: Lookup) -> Dotenv:
        file = (self.root / entry).resolve()
        try:
            text = _read_utf8(file, self.display(file))
        except FileNotFoundError:
            raise ManifestError(
                f"env_file {entry!r} not found (looked for {file})",
                mark=node.mark if node else None,
                fix="create the file or remove it from env_file",
            ) from None
        except OSError as exc:
            raise ManifestError(
                f"env_file {entry!r}: cannot read: {exc}",
                mark=node.mark if node else None,
                fix="check the file",
            ) from exc
        # Named as the manifest names it, not where a symlink points now: a
        # link pointed elsewhere later is a change the cache must see.
        self.sources[str(self.root / entry)] = source_digest(text)
        dotenv = parse_dotenv(text, self.display(file), lookup)
        self.warnings.extend(dotenv.warnings)
        return dotenv


def _read_utf8(path: Path, name: str) -> str:
    """The file's text; a ManifestError with the place where it is not UTF-8.
    (OSError as `Path.read_bytes` raises it.)"""
    data = path.read_bytes()
    found = None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        found, mark = "UTF-16 (its byte-order mark)", Mark(name, 1, 1)
    elif len(data) >= 4 and data.count(0) * 2 >= len(data) - 1:
        # ASCII saved as UTF-16 without a mark is UTF-8 with every other byte 0.
        found, mark = "what looks like UTF-16 (every other byte is 0)", Mark(name, 1, 1)
    else:
        try:  # with universal newlines, as `Path.read_text` reads it
            return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
        except UnicodeDecodeError as exc:
            found = f"the byte 0x{data[exc.start]:02x}"
            mark = Mark(name, *place_of(data[: exc.start].decode("utf-8", "replace")))
    raise ManifestError(f"expected UTF-8 text, found {found}", mark=mark,
                        fix="save the file as UTF-8")


def _check_text(text: str, node: Node, path: Loc, *, key: bool = False) -> None:
    """No program can be given a NUL or an unpaired surrogate (one that is
    not an undecodable byte, as `os.environ` has them): say so here, not
    as a failed start."""
    bad = "\0" if "\0" in text else None
    if bad is None:
        try:
            text.encode("utf-8", "surrogateescape")
            return
        except UnicodeEncodeError as exc:
            bad = text[exc.start]
    escape = "\\0" if bad == "\0" else f"\\u{ord(bad):04x}"
    what = "a NUL character" if bad == "\0" else "an unpaired surrogate"
    where = node.key_mark if key and node.key_mark else node.mark
    raise ManifestError(
        f"{_printable(_dotted(path))}: expected text a program can be given, found {what} "
        f"({escape}) in {'the key' if key else 'the value'}",
        mark=where,
        fix=f"remove the {escape} (however it is written)",
    )


def _printable(text: str) -> str:
    """`text` with what a terminal would not show (a NUL, a surrogate) escaped."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _is_depends_list(node: Node, path: Loc) -> bool:
    is_depends = len(path) == 3 and path[0] == "services" and path[2] == "depends_on"
    if not (is_depends and isinstance(node.value, list)):
        return False
    return all(isinstance(item.value, str) for item in node.value)


def _is_string_field(path: Loc) -> bool:
    return _matches(path, _STRING_BY_LENGTH)


def _matches(path: Loc, patterns: dict[int, tuple[tuple[str, ...], ...]]) -> bool:
    """Does `path` fit one of `patterns` (by length, from `_by_length`),
    where "*" stands for any one part?"""
    for pattern in patterns.get(len(path), ()):
        for want, part in zip(pattern, path):
            if want != "*" and want != part:
                break
        else:
            return True
    return False


def _offset_mark(node: Node, offset: int) -> Mark:
    # Exact only for a plain scalar on one line; otherwise the value's start.
    if node.style is None and node.end is not None and node.end.line == node.mark.line:
        return Mark(node.mark.file, node.mark.line, node.mark.col + offset)
    return node.mark


def _reserved(service: Service) -> list[str]:
    names = ["PORT", "LSQ_APP_DIR", "LSQ_SERVICE", "LSQ_INSTANCE"]
    return names + ["DATABASE_URL"] if service.data else names


def _reserved_warning(key: str, name: str, service: Service, mark: Mark) -> str:
    where = f"{mark.file}:{mark.line}"
    if key == "PORT":
        port = service.port if service.port is not None else "a free port per instance"
        return (
            f"PORT in {where} is ignored; LSQ sets PORT ({port} for {name}); "
            "set `port:` in lsq.yaml instead"
        )
    if key == "DATABASE_URL":
        return (
            f"DATABASE_URL in {where} is ignored; LSQ sets it for "
            f"`data: {service.data}` ({name}); "
            "remove `data:` to manage the database yourself"
        )
    return f"{key} in {where} is ignored; LSQ sets {key} itself; remove it"


def _dotted(path: Loc) -> str:
    return ".".join(str(p) for p in path) if path else "top level"


def _find(tree: Node, loc: Sequence[str | int]) -> Node | None:
    node: Node | None = tree
    for part in loc:
        node = node.child(part) if node else None
    return node


def _place(node: Node | None, key: str) -> Mark:
    child = node.child(key) if node else None
    assert child is not None
    return child.place


def _deepest(tree: Node, loc: Sequence[str | int]) -> tuple[Node, Loc]:
    """The deepest node along `loc` and the part of `loc` that reached it."""
    node, path = tree, ()
    for part in loc:
        child = node.child(part)
        if child is None:
            break
        node, path = child, (*path, part)
    return node, path


# -- pydantic errors to one ManifestError

_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "none_required": "nothing",
}

_FIX = {
    "port": "write a number from 1 to 65535, or leave port out to have one assigned",
    "replicas": "write a whole number from 0 to 256",
    "command": "write a shell command string or an argv list",
    "depends_on": "list service names, or map each to started, healthy or completed",
    "restart": "write always, on-failure or no",
}


def _validate(data: object, tree: Node) -> Manifest:
    from pydantic import ValidationError

    from lsq.manifest._schema import Manifest

    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise _translate(exc.errors(include_url=False), tree) from exc


def _translate(errors: list[ErrorDetails], tree: Node) -> ManifestError:
    # An unknown key is the likeliest cause of everything else (a misspelt
    # required key is also "missing"), so it is reported first.
    unknown = [e for e in errors if e["type"] == "extra_forbidden"]
    first = (unknown or errors)[0]
    if unknown:
        return _unknown_key(first, tree)
    node, path = _deepest(tree, first["loc"])
    if first["type"] == "missing":
        key = first["loc"][-1]
        return ManifestError(
            f"{_dotted(path)}: missing required key '{key}'",
            mark=node.place,
            fix=f"add {key}:" if key != "services" else "add a services: map",
        )
    same = [e for e in errors if _deepest(tree, e["loc"])[1] == path]
    expected = " or ".join(dict.fromkeys(_expected(e) for e in same if _expected(e)))
    if expected:
        problem = f"expected {expected}, found {_found(first['input'])}"
    else:
        problem = first["msg"].removeprefix("Value error, ")
    field = next((str(p) for p in reversed(path) if isinstance(p, str)), "")
    fix = _FIX.get(field, "see the field's reference in docs/manifest.md")
    quoted = node.style in ("'", '"') and _INT.match(node.text)
    if quoted and first["type"] == "int_type":
        fix = f"write the number without quotes: {field}: {node.text}"
    if first["type"] == "bool_type" and isinstance(node.value, str):
        # YAML 1.2 reads only true and false as booleans: yes, on, 'true' are text.
        fix = f"write {field}: true or {field}: false, without quotes"
    restart_word = node.value in ("always", "on-failure", "no")
    if len(path) == 3 and path[0] == "services" and field == "policy" and restart_word:
        fix = (f"when to restart goes under restart: (restart: {node.value}); "
               "policy: is for calls to this service (timeouts, retries, breaker)")
    # An empty value's own place is wherever the next token is; point at its key.
    empty = node.value is None and node.style is None
    if empty and len(path) == 2 and path[0] == "services":
        fix = f"indent its keys under {path[1]}:, such as command: or external:"
    elif len(path) == 2 and path[0] == "services" and first["type"] in (
        "model_type", "model_attributes_type", "dict_type"
    ):
        fix = (f"each entry under services: is a service, a mapping; if {path[1]}: is a "
               "setting, indent it under a service")
    mark = node.place if isinstance(node.value, dict | list) or empty else node.mark
    return ManifestError(f"{_dotted(path)}: {problem}", mark=mark, fix=fix)


def _expected(error: ErrorDetails) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "literal_error":
        return f"one of {ctx['expected']}"
    if kind == "greater_than_equal":
        return f"a number >= {ctx['ge']}"
    if kind == "less_than_equal":
        return f"a number <= {ctx['le']}"
    return _EXPECTED.get(kind, "")


def _found(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    return as_found(value)


def _shorthand_keys(node: Node, path: Loc) -> list[str]:
    """The keys a service's `restart:` written in short (its policy alone)
    stands for, as `lsq.manifest._rules.restart_shorthand` expands it; none
    for anything else."""
    if not (len(path) == 3 and path[0] == "services" and path[2] == "restart"):
        return []
    expanded = restart_shorthand(node.value)
    return list(expanded) if expanded is not node.value and isinstance(expanded, dict) else []


def _close_matches(word: str, words: list[str]) -> list[str]:
    """The one of `words` closest to `word`, if any is close: for the fix of
    an error, so difflib is loaded only then."""
    import difflib

    return difflib.get_close_matches(word, words, n=1)


def _unknown_key(error: ErrorDetails, tree: Node) -> ManifestError:
    loc = error["loc"]
    node = _find(tree, loc)
    parent = loc[:-1]
    key = str(loc[-1])
    model = _model_at(parent)
    known = list(model.model_fields) if model else []
    close = _close_matches(key, known)
    # The key of a section beside it first, then a typo of one of its own,
    # then a typo of a key of a section beside it.
    nested = _nested_hint(key, parent, tree, model, fuzzy=False)
    if nested:
        fix = nested
    elif close:
        fix = f"did you mean '{close[0]}'?"
    elif nested := _nested_hint(key, parent, tree, model, fuzzy=True):
        fix = nested
    else:
        fix = f"known keys: {', '.join(known)}" if known else "remove it"
        if not parent:
            fix += "; extension keys start with x-"
    return ManifestError(
        f"{_dotted(parent)}: unknown key '{key}'",
        mark=node.place if node else None,
        fix=fix,
    )


def _nested(model: type[BaseModel] | None) -> tuple[tuple[str | None, type[BaseModel]], ...]:
    """Sections whose keys are often written one level too far out, from
    `model`: (the key of the section, or None for any service, the model of
    its keys)."""
    from lsq.manifest._schema import Gateway, Health, Manifest, Restart, Service

    nested: dict[type[BaseModel], tuple[tuple[str | None, type[BaseModel]], ...]] = {
        Service: (("health", Health), ("restart", Restart), ("gateway", Gateway)),
        Manifest: (("gateway", Gateway), (None, Service)),
    }
    return nested.get(model, ()) if model else ()


def _nested_hint(key: str, parent: Sequence[str | int], tree: Node,
                 model: type[BaseModel] | None, *, fuzzy: bool) -> str | None:
    """Where `key` belongs when it is a key (with `fuzzy`, a typo of one) of
    a section next to where it was written; None otherwise."""
    from lsq.manifest._schema import Service

    for section, inner in _nested(model):
        fields = list(inner.model_fields)
        exact = key in fields
        close = _close_matches(key, fields) if fuzzy else []
        if not (exact or close):
            continue
        if section is None:
            where = "a service in services:"
        elif section == "gateway" and model is Service:
            return f"did you mean '{close[0]}' (of the top-level gateway:)?" if close else (
                f"{key} is a setting of the top-level gateway:; move it there")
        elif parent and parent[-1] == section:
            continue  # a service named like the section: not a slip
        else:
            where = f"{section}:"
            here = _find(tree, (*parent, section))
            if here is not None and not isinstance(here.value, dict):
                return (f"{close[0] if close else key} belongs under {where}, written "
                        f"as one value here: make {section}: a mapping with {key} in it")
        if close:
            return f"did you mean '{close[0]}' (under {where})?"
        return f"{key} belongs under {where}; indent it there"
    return None


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    from lsq.manifest._schema import Gateway, Health, Manifest, Restart, Route, Service

    shape = tuple(
        "*" if i == 1 and loc[0] == "services" else p for i, p in enumerate(loc)
    )
    shapes: dict[tuple[object, ...], type[BaseModel]] = {
        (): Manifest,
        ("gateway",): Gateway,
        ("services", "*"): Service,
        ("services", "*", "health"): Health,
        ("services", "*", "restart"): Restart,
    }
    if len(shape) == 4 and shape[:3] == ("services", "*", "routes"):
        return Route
    return shapes.get(shape)


# -- checks across fields and services


def _check_names(tree: Node) -> None:
    services = tree.child("services")
    if services is None or not isinstance(services.value, dict):
        return
    for name, node in services.value.items():
        if not re.match(NAME_PATTERN, name):
            suggestion = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")
            example = f", such as '{suggestion}'" if suggestion else ""
            raise ManifestError(
                f"services: expected a service name of lowercase letters, digits, "
                f"'.', '_' or '-' (starting with a letter or digit), found {name!r}",
                mark=node.place,
                fix=f"rename the service{example}",
            )


def _check(manifest: Manifest, tree: Node) -> None:
    services = manifest.services
    for name, service in services.items():
        _check_service(name, service, tree)
        for dep in service.depends_on:
            if dep not in services:
                close = _close_matches(dep, list(services))
                raise ManifestError(
                    f"services.{name}.depends_on: unknown service '{dep}'",
                    mark=_mark(tree, "services", name, "depends_on", dep),
                    fix=f"did you mean '{close[0]}'?"
                    if close
                    else f"services are: {', '.join(services)}",
                )
            _check_condition(name, dep, service.depends_on[dep], services, tree)
    _check_cycles(manifest, tree)
    _check_ports(manifest, tree)
    _check_env_names(manifest, tree)


def _check_service(name: str, service: Service, tree: Node) -> None:
    for field in ("health", "data"):
        if service.external is not None and getattr(service, field) is not None:
            raise ManifestError(
                f"services.{name}.{field}: an external service cannot have {field}:",
                mark=_mark(tree, "services", name, field),
                fix=f"remove {field}: from {name}; LSQ does not run external ones",
            )


def _check_condition(
    name: str, dep: str, condition: str | None, services: dict[str, Service], tree: Node
) -> None:
    target = services[dep]
    if condition != "healthy" or target.health is not None:
        return
    node = _find(tree, ("services", name, "depends_on", dep))
    if target.external is not None:
        found = "found an external service, which LSQ does not check"
        fix = "use condition: started"
    else:
        found = "found none"
        fix = f"add health: to {dep}, or use condition: started"
    raise ManifestError(
        f"services.{name}.depends_on.{dep}: condition healthy needs a health check "
        f"on {dep}, {found}",
        mark=node.mark if node else None,
        fix=fix,
    )


def _check_cycles(manifest: Manifest, tree: Node) -> None:
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "active"
        for dep in manifest.services[name].depends_on:
            if state.get(dep) == "active":
                path = [*trail, name]
                cycle = [*path[path.index(dep) :], dep]
                first, second = cycle[0], cycle[1]
                shown = " -> ".join(cycle)
                raise ManifestError(
                    f"services.{first}.depends_on: dependency cycle {shown}",
                    mark=_mark(tree, "services", first, "depends_on", second),
                    fix="remove one of these dependencies",
                )
            if dep not in state:
                visit(dep, [*trail, name])
        state[name] = "done"

    for name in manifest.services:
        if name not in state:
            visit(name, [])


def _check_ports(manifest: Manifest, tree: Node) -> None:
    owners: dict[int, str] = {}
    ingress = manifest.gateway.ingress_port
    for name, service in manifest.services.items():
        port = service.port
        if port is None:
            continue
        other = owners.get(port) or (
            "the gateway's ingress_port" if port == ingress else None
        )
        if other is not None:
            used_by = other if other.startswith("the ") else f'"{other}"'
            raise ManifestError(
                f"services.{name}.port: port {port} is also used by {used_by}",
                mark=_mark(tree, "services", name, "port"),
                fix="give one of them another port "
                "or leave both out to have them assigned",
            )
        owners[port] = name


def _check_env_names(manifest: Manifest, tree: Node) -> None:
    owners: dict[str, str] = {}
    for name in manifest.services:
        variable = env_name(name)
        if variable in owners:
            raise ManifestError(
                f"services.{name}: its address variable {variable} is also the one "
                f'of "{owners[variable]}"',
                mark=_mark(tree, "services", name),
                fix="rename one of them; '-', '.' and '_' all become '_'",
            )
        owners[variable] = name


# -- the program a command runs

# fmt: off
_SHELL_WORDS = frozenset(
    {
        ".", ":", "[", "[[", "{", "(", "!", "alias", "bg", "break", "builtin", "case",
        "cd", "command", "continue", "declare", "do", "done", "echo", "elif", "else",
        "esac", "eval", "exec", "exit", "export", "false", "fc", "fg", "fi", "for",
        "function", "getopts", "hash", "if", "jobs", "kill", "let", "local", "printf",
        "pwd", "read", "readonly", "return", "select", "set", "shift", "source",
        "test", "then", "time", "times", "trap", "true", "type", "typeset", "ulimit",
        "umask", "unalias", "unset", "until", "wait", "while",
    }
)
# fmt: on
_FIRST_WORD = re.compile(r"^([A-Za-z0-9_./-]+)(?:\s|$)")


def _check_commands(
    manifest: Manifest, tree: Node, envs: dict[str, dict[str, str]], root: Path,
    checked: list[tuple[str, str, str]],
) -> list[str]:
    """An empty command is an error; a program that cannot be found, or a
    `cwd` that is not a folder, is a warning with its place: `lsq up` still
    starts the other services and marks that one failed with the reason
    (the program or folder may also appear by the time it starts, for
    example from a build step)."""
    warnings: list[str] = []
    looked_up: dict[tuple[str, str, str], tuple[str, str] | None] = {}
    for name, service in manifest.services.items():
        if service.command is None:
            continue
        cwd = root / service.cwd if service.cwd else root
        cwd_is_dir = _is_dir(cwd)
        if not cwd_is_dir:
            node = _find(tree, ("services", name, "cwd"))
            place = f"{node.mark}: " if node else ""
            what = "is not a folder" if _exists(cwd) else "does not exist"
            warnings.append(
                f"{place}services.{name}.cwd: {as_found(service.cwd)} {what} (looked for "
                f"{cut(str(cwd), 200)}); create it or fix the path (lsq up will mark {name} failed)"
            )
        node = _find(tree, ("services", name, "command"))
        where = f"services.{name}.command"
        mark = node.mark if node else None
        is_list = isinstance(service.command, list)
        if not (service.command if is_list else str(service.command).strip()):
            found = "an empty list" if is_list else '""'
            raise ManifestError(
                f"{where}: expected a command to run, found {found}",
                mark=node.place if node else None,
                fix="write a shell line such as 'python app.py' or a list "
                "such as [python, app.py]",
            )
        program = _program(service.command)
        if program is None:
            continue
        if isinstance(service.command, list) and node and node.child(0):
            mark = node.child(0).mark  # type: ignore[union-attr]
        if "/" in program and not cwd_is_dir:
            continue  # warned of above
        path = envs[name].get("PATH", os.environ.get("PATH", os.defpath))
        key = (program, str(cwd), path)
        if key not in looked_up:  # services often share a program (python, node)
            looked_up[key] = missing_program(program, cwd, path)
            checked.append(key)
        problem = looked_up[key]
        if problem:
            place = f"{mark}: " if mark else ""
            warnings.append(
                f"{place}{where}: {problem[0]}; {problem[1]} "
                f"(lsq up will mark {name} failed)"
            )
    return warnings


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long for the file system, say
        return False


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def _program(command: str | list[str]) -> str | None:
    """The program a command runs, when it can be known before running it."""
    if isinstance(command, list):
        return command[0]
    text = command.strip()
    if text.startswith("exec "):
        text = text[5:].lstrip()
    match = _FIRST_WORD.match(text)
    if match is None or match.group(1) in _SHELL_WORDS:
        return None
    return match.group(1)


def _mark(tree: Node, *loc: str | int) -> Mark | None:
    node = _find(tree, loc)
    return node.place if node else None


def _resolve(manifest: Manifest, envs: dict[str, dict[str, str]]) -> Manifest:
    services = manifest.services
    resolved: dict[str, Service] = {}
    for name, service in services.items():
        depends = {
            dep: cond or ("healthy" if services[dep].health is not None else "started")
            for dep, cond in service.depends_on.items()
        }
        resolved[name] = replace(service, depends_on=depends, env=dict(envs[name]))
    return replace(manifest, services=resolved)
