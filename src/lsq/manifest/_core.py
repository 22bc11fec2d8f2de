"""Checking a manifest with pydantic-core alone, for a first `lsq up -d`.

Every service of a first start waits for the CLI to check the manifest.
With the schema's pydantic models, that check first imports pydantic
(about 60 ms of CPU here) and builds the models' validators (about 45 ms),
while the cores are wanted for starting services. pydantic-core, which does
the validating under pydantic, loads in about 25 ms.

So `lsq.manifest._compile` writes the models' core schema out as a module
(`_core_schema`), with each model as a typed dict that becomes the model's
frozen form, and `validate` checks data with it. It gives the same frozen
manifest as the models would (tests hold the two to the same answers).

It only ever says "valid" or "not": what is wrong is for the models to say,
as the loader then asks them, so every error reads the same either way. It
also answers "not" (and the models check) when the compiled schema is not
current: written from other sources of the schema than these (which may
even fail to load), or by another pydantic or for another pydantic-core.
pyproject.toml pins the pydantic it was written by.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsq.manifest._frozen import _ATOMS, CLASSES, Frozen

if TYPE_CHECKING:
    from pydantic_core import SchemaValidator

    from lsq.manifest._schema import Manifest

# What the compiled schema is made from, beside pydantic-core itself.
_SOURCES = ("_schema.py", "_rules.py", "_frozen.py", "_compile.py")

_validator: SchemaValidator | None | bool = False  # False: not looked for yet


def validate(data: object) -> Manifest | None:
    """`data` (the manifest as plain data) checked by the compiled schema,
    as a frozen manifest (typed as the model it stands for, as
    `AppConfig.manifest` is); None when it is not valid or the compiled
    schema is not current."""
    validator = _compiled()
    if validator is None:
        return None
    from pydantic_core import ValidationError

    try:
        return validator.validate_python(data)  # type: ignore[no-any-return]
    except ValidationError:
        return None


def _compiled() -> SchemaValidator | None:
    global _validator
    if _validator is False:
        _validator = _build()
    return _validator  # type: ignore[return-value]


def _build() -> SchemaValidator | None:
    try:
        import pydantic_core

        # A stale one may name a rule or a model that is gone: any failure
        # to load or build it means the models check instead.
        from lsq.manifest import _core_schema

        current = (
            _core_schema.PYDANTIC_CORE == pydantic_core.__version__
            and _core_schema.PYDANTIC == _installed_pydantic()
            and _core_schema.SOURCES == sources_digest()
        )
        return pydantic_core.SchemaValidator(_core_schema.SCHEMA) if current else None
    except Exception:  # noqa: BLE001 - whatever it was, the models decide
        return None


def _installed_pydantic() -> str | None:
    """pydantic's version, read from the `version.py` of the pydantic that
    would be imported, without importing it (pydantic made the core schema,
    and a release may change that with the same pydantic-core)."""
    import re
    from importlib.util import find_spec

    spec = find_spec("pydantic")
    if spec is None or spec.origin is None:
        return None
    text = (Path(spec.origin).parent / "version.py").read_text()
    found = re.search(r"^VERSION = ['\"]([^'\"]+)['\"]", text, re.MULTILINE)
    return found.group(1) if found else None


def sources_digest() -> str:
    """A digest of the modules the compiled schema is made from (a change to
    any of them, a comment too, makes it stale)."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _SOURCES:
        digest.update(f"{name}\0".encode())
        digest.update((here / name).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


# -- what the compiled schema calls


def field(schema: dict[str, Any], **default: Any) -> dict[str, Any]:
    """A typed dict's field of `schema`: required, or with its `default`
    (or `default_factory`) when left out."""
    if not default:
        return {"type": "typed-dict-field", "schema": schema, "required": True}
    schema = {"type": "default", "schema": schema, **default}
    return {"type": "typed-dict-field", "schema": schema, "required": False}


def model(name: str, fields: dict[str, Any], *, config: dict[str, Any],
          ref: str | None = None) -> dict[str, Any]:
    """The model `name` as a typed dict of `fields`, built into its frozen
    form; unknown keys refused, as the models refuse them."""
    typed = {"type": "typed-dict", "fields": fields, "config": config,
             "extra_behavior": config["extra_fields_behavior"]}
    node = {"type": "function-after", "schema": typed,
            "function": {"type": "no-info", "function": make(name)}}
    return {**node, "ref": ref} if ref else node


def make(name: str) -> Callable[[dict[str, Any]], Frozen]:
    """What builds the frozen model `name` from the dict of its validated
    fields, which pydantic-core gives (`_frozen._make` takes a tuple, as
    unpickling does)."""
    cls = CLASSES[name]

    def build(values: dict[str, Any]) -> Frozen:
        return cls(**values)

    return build


def defaults(value: object) -> Callable[[], object]:
    """A default factory: `value` itself if nothing in it can change, else a
    fresh copy each time, as the models' factories give."""
    if _constant(value):
        return lambda: value
    return lambda: copy.deepcopy(value)


def _constant(value: object) -> bool:
    if type(value) in _ATOMS:
        return True
    if isinstance(value, Frozen):
        return all(_constant(getattr(value, name)) for name in value.fields)
    return False
