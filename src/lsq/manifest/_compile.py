"""Write `lsq.manifest._core_schema`: the schema's models compiled for
pydantic-core alone. Run after changing the schema, its rules or pydantic:

    .venv/bin/python -m lsq.manifest._compile

Importing pydantic and building the models takes a first `lsq up -d` about
0.1 s of CPU before any service starts (see `lsq.manifest._core`). pydantic
builds each model's validator from a core schema: a tree of plain dicts that
pydantic-core turns into a validator. This module takes that tree from the
models and writes it out as Python source, with each model's node replaced
by a typed dict whose values become the model's frozen form
(`lsq.manifest._frozen`). The functions it calls are the schema's own rules
(`lsq.manifest._rules`, `parse_duration`), named by import, so the written
module loads without pydantic. To read as the models do, it writes each
model and field as a call of `lsq.manifest._core`'s `model` and `field`, and
a part used in several places (a duration) once, by name.

Hand-written because pydantic has no export of a core schema as source, and
its pickled form names the model classes, which would load pydantic again.
A test checks that the written module is what this one writes now.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import pydantic
import pydantic_core

from lsq.manifest import _core, _frozen, _rules
from lsq.manifest._schema import Manifest

TARGET = Path(__file__).with_name("_core_schema.py")

# Where the functions of the core schema may come from: modules that load
# without pydantic, as the written module does.
_MODULES = {_rules.__name__: "_rules", _frozen.__name__: "_frozen"}

_WIDTH = 88

# What a model's field may hold to become a typed dict's: its schema, and
# what only serialization and JSON Schema read. Anything else (an alias, say)
# would change what is valid: the compiler stops rather than drop it.
_FIELD_KEYS = {"type", "schema", "metadata", "serialization_exclude", "frozen"}

# Keys of a core schema that only serialization and JSON Schema read.
_DROPPED = {"metadata", "serialization"}

HEADER = '''"""The schema's models as a pydantic-core schema, for `lsq.manifest._core`.

Written by `python -m lsq.manifest._compile`; do not edit.
"""

# fmt: off

from lsq.manifest import _frozen, _rules
from lsq.manifest._core import defaults, field, make, model

'''


def source() -> str:
    """The text of the module, from the models as they are now."""
    Manifest.model_rebuild(force=True)
    converter = _Converter()
    tree = converter.convert(Manifest.__pydantic_core_schema__)
    shared = _shared([*converter.models.values(), tree])
    writer = _Writer(shared)
    named: dict[str, Any] = {name: node for node, name in shared.values()}
    named.update((name.upper(), node) for name, node in converter.models.items())
    models = "".join(
        f"{name} = {writer.write(node, lead=len(name) + 3, whole=False)}\n\n"
        for name, node in named.items()
    )
    return (
        f"{HEADER}SOURCES = {_core.sources_digest()!r}\n"
        f"PYDANTIC = {pydantic.VERSION!r}\n"
        f"PYDANTIC_CORE = {pydantic_core.__version__!r}\n\n"
        f"{models}SCHEMA = {writer.write(tree)}\n"
    )


class _Ref:
    """Python source to write as it is (a name, a call)."""

    def __init__(self, text: str) -> None:
        self.text = text


class _Call:
    """A call of one of `lsq.manifest._core`'s builders (`field`, `model`),
    written out as such: shorter than the dicts it returns, for each field
    and model alike."""

    def __init__(self, function: str, args: list[Any], keywords: dict[str, Any]) -> None:
        self.function, self.args, self.keywords = function, args, keywords


def _field(schema: dict[str, Any]) -> _Call:
    """A model's field as a typed dict's: its schema, and its default if it
    has one."""
    if schema["type"] != "default":
        return _Call("field", [schema], {})
    default = {k: v for k, v in schema.items() if k not in ("type", "schema")}
    return _Call("field", [schema["schema"]], default)


class _Converter:
    """The core schema with models as typed dicts, each model's node kept in
    `models` (in the order they can be written: what a model holds first)
    and named where it was."""

    def __init__(self) -> None:
        self.models: dict[str, _Call] = {}

    def convert(self, node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("type") == "model":
                return self.model(node)
            out = {
                k: _factory(v) if k == "default_factory" else self.convert(v)
                for k, v in node.items()
                if k not in _DROPPED
            }
            for key in ("ref", "schema_ref"):
                if key in node:
                    out[key] = _stable_ref(node[key])
            return out
        if isinstance(node, list | tuple):
            return type(node)(self.convert(v) for v in node)
        if callable(node):
            return _function(node)
        return node

    def model(self, node: dict[str, Any]) -> _Ref:
        """A model's node as a typed dict that becomes the model's frozen form."""
        name = node["cls"].__name__
        assert node["schema"]["type"] == "model-fields", node["schema"]["type"]
        assert not (node.get("custom_init") or node.get("root_model") or node.get("post_init"))
        assert name not in self.models, f"{name} is written out twice"
        for field, spec in node["schema"]["fields"].items():
            unknown = set(spec) - _FIELD_KEYS
            assert not unknown, f"{name}.{field}: {unknown} is not carried over"
        fields = {
            field: _field(self.convert(spec["schema"]))
            for field, spec in node["schema"]["fields"].items()
        }
        assert tuple(fields) == _frozen.FIELDS[name], name
        # Every model has the config and the definition name `_core.model`
        # gives it; written out, they would be the same lines for each.
        config = dict(node.get("config", {}))
        if config != _core.model_config(name):
            raise SystemExit(f"lsq.manifest._compile: {name}'s config is {config}, not "
                             f"{_core.model_config(name)}; change lsq.manifest._core.MODEL_CONFIG")
        keywords: dict[str, Any] = {}
        if "ref" in node:
            assert _stable_ref(node["ref"]) == _core.model_ref(name), node["ref"]
            keywords["referenced"] = True
        self.models[name] = _Call("model", [name, fields], keywords)
        return _Ref(name.upper())


def _stable_ref(ref: str) -> str:
    # pydantic names a model's definition with the class's id(); the name
    # alone is stable from one run to the next.
    return ref.split(":", 1)[0]


def _factory(factory: Any) -> _Ref:
    """A default factory as source: the default it makes now (frozen if it
    is a model), copied at each use unless nothing in it can change. So a
    factory must give the same value each time (none reads the clock or the
    environment)."""
    if factory in (dict, list):
        return _Ref(factory.__name__)
    value = _frozen.freeze(factory())
    return _Ref(f"defaults({_Writer().write(value)})")


def _function(function: Any) -> _Ref:
    module = _MODULES.get(getattr(function, "__module__", ""))
    name = getattr(function, "__qualname__", "")
    if module is None or "." in name or "<" in name:
        raise SystemExit(
            f"lsq.manifest._compile: the schema calls {function!r}; a validator must be "
            f"a function of {' or '.join(_MODULES)} so that it loads without pydantic"
        )
    return _Ref(f"{module}.{name}")


def _shared(trees: list[Any]) -> dict[str, tuple[dict[str, Any], str]]:
    """The parts that come more than once in `trees` and can be named for
    what they are (a duration, an optional one), each written once in the
    module: {its text: (the part, its name)}, inner parts first."""
    counts: Counter[str] = Counter()
    names: dict[str, tuple[dict[str, Any], str]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, _Call):
            walk([*node.args, *node.keywords.values()])
        if isinstance(node, list | tuple):
            for item in node:
                walk(item)
        if not isinstance(node, dict):
            return
        for item in node.values():
            walk(item)
        text = _PLAIN.line(node)
        counts[text] += 1
        name = _name_of(node, names)
        if name is not None:
            names[text] = (node, name)

    for tree in trees:
        walk(tree)
    return {text: named for text, named in names.items() if counts[text] > 1}


def _name_of(node: dict[str, Any], names: dict[str, tuple[dict[str, Any], str]]) -> str | None:
    if node.get("type") == "function-before":
        # `_frozen.parse_duration` checks a DURATION
        function: _Ref = node["function"]["function"]
        return function.text.rsplit(".", 1)[1].removeprefix("parse_").upper()
    if node.get("type") == "nullable":
        inner = names.get(_PLAIN.line(node["schema"]))
        return None if inner is None else f"OPTIONAL_{inner[1]}"
    return None


class _Writer:
    """Python source for a tree of dicts, lists, atoms and frozen models,
    with the `shared` parts (`_shared`) by name."""

    def __init__(self, shared: dict[str, tuple[dict[str, Any], str]] | None = None) -> None:
        self.shared = shared or {}

    def write(self, value: Any, indent: int = 0, lead: int = 0, *, whole: bool = True) -> str:
        """`value` on one line if it fits in the width after `lead`
        characters; a dict that does not fit, one item a line. With `whole`
        false, `value` itself is written out even if it is a shared part."""
        line = self.line(value, whole=whole)
        if 4 * indent + lead + len(line) + 1 <= _WIDTH:  # and a comma
            return line
        pad = "    " * (indent + 1)
        if isinstance(value, _Call):
            parts = [self.write(arg, indent + 1) for arg in value.args]
            parts += [
                f"{key}={self.write(item, indent + 1, len(key) + 1)}"
                for key, item in value.keywords.items()
            ]
            inner = "".join(f"{pad}{part},\n" for part in parts)
            return f"{value.function}(\n{inner}{'    ' * indent})"
        if not isinstance(value, dict):
            return line
        items = [
            f"{pad}{key!r}: {self.write(item, indent + 1, len(repr(key)) + 2)},"
            for key, item in value.items()
        ]
        return "{\n" + "\n".join(items) + "\n" + "    " * indent + "}"

    def line(self, value: Any, *, whole: bool = True) -> str:
        if whole and self.shared and isinstance(value, dict):
            named = self.shared.get(_PLAIN.line(value))
            if named is not None:
                return named[1]
        if isinstance(value, _Ref):
            return value.text
        if isinstance(value, _Call):
            args = [self.line(arg) for arg in value.args]
            args += [f"{key}={self.line(item)}" for key, item in value.keywords.items()]
            return f"{value.function}({', '.join(args)})"
        if isinstance(value, _frozen.Frozen):
            fields = {name: getattr(value, name) for name in value.fields}
            return f"make({type(value).__name__!r})({self.line(fields)})"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k!r}: {self.line(v)}" for k, v in value.items()) + "}"
        if isinstance(value, list | tuple):
            inner = ", ".join(self.line(item) for item in value)
            return f"({inner},)" if isinstance(value, tuple) else f"[{inner}]"
        if isinstance(value, float) and not math.isfinite(value):
            raise SystemExit(f"lsq.manifest._compile: cannot write {value!r} as source")
        if value is None or isinstance(value, bool | int | float | str):
            return repr(value)
        raise SystemExit(f"lsq.manifest._compile: cannot write {value!r} in the core schema")


_PLAIN = _Writer()  # every part written out: what a part is known by


def main() -> None:
    text = source()
    if TARGET.exists() and TARGET.read_text() == text:
        print(f"{TARGET.name} is current")
        return
    TARGET.write_text(text)
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
