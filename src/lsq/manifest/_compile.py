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
module loads without pydantic.

Hand-written because pydantic has no export of a core schema as source, and
its pickled form names the model classes, which would load pydantic again.
A test checks that the written module is what this one writes now.
"""

from __future__ import annotations

import math
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
from lsq.manifest._core import defaults, make

'''


def source() -> str:
    """The text of the module, from the models as they are now."""
    Manifest.model_rebuild(force=True)
    converter = _Converter()
    tree = converter.convert(Manifest.__pydantic_core_schema__)
    writer = _Writer()
    models = "".join(
        f"{name.upper()} = {writer.write(node, lead=len(name) + 3)}\n\n"
        for name, node in converter.models.items()
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


class _Converter:
    """The core schema with models as typed dicts, each model's node kept in
    `models` (in the order they can be written: what a model holds first)
    and named where it was."""

    def __init__(self) -> None:
        self.models: dict[str, dict[str, Any]] = {}

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
            field: {
                "type": "typed-dict-field",
                "schema": self.convert(spec["schema"]),
                "required": spec["schema"]["type"] != "default",
            }
            for field, spec in node["schema"]["fields"].items()
        }
        assert tuple(fields) == _frozen.FIELDS[name], name
        config = dict(node.get("config", {}))
        typed = {"type": "typed-dict", "fields": fields, "config": config}
        if config.get("extra_fields_behavior"):
            typed["extra_behavior"] = config["extra_fields_behavior"]
        out: dict[str, Any] = {
            "type": "function-after",
            "function": {"type": "no-info", "function": _Ref(f"make({name!r})")},
            "schema": typed,
        }
        if "ref" in node:
            out["ref"] = _stable_ref(node["ref"])
        self.models[name] = out
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


class _Writer:
    """Python source for a tree of dicts, lists, atoms and frozen models."""

    def write(self, value: Any, indent: int = 0, lead: int = 0) -> str:
        """`value` on one line if it fits in the width after `lead`
        characters; a dict that does not fit, one item a line."""
        line = self.line(value)
        if 4 * indent + lead + len(line) + 1 <= _WIDTH or not isinstance(value, dict):
            return line
        pad = "    " * (indent + 1)
        items = [
            f"{pad}{key!r}: {self.write(item, indent + 1, len(repr(key)) + 2)},"
            for key, item in value.items()
        ]
        return "{\n" + "\n".join(items) + "\n" + "    " * indent + "}"

    def line(self, value: Any) -> str:
        if isinstance(value, _Ref):
            return value.text
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


def main() -> None:
    text = source()
    if TARGET.exists() and TARGET.read_text() == text:
        print(f"{TARGET.name} is current")
        return
    TARGET.write_text(text)
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
