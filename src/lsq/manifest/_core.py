"""Checking a manifest with pydantic-core alone, for a first `lsq up -d`.

Every service of a first start waits for the CLI to check the manifest.
With the schema's pydantic models, that check first imports pydantic
(about 60 ms of CPU here) and builds the models' validators (about 45 ms),
while the cores are wanted for starting services. The compiled module of
pydantic-core, which does the validating under pydantic, loads in about
3 ms (`_extension`).

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
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from lsq.manifest._frozen import _ATOMS, CLASSES, Frozen

if TYPE_CHECKING:
    from pydantic_core import SchemaValidator

    from lsq.manifest._schema import Manifest

# What the compiled schema is made from, beside pydantic-core itself (this
# module too: its `model` and `field` build what the compiled schema writes).
_SOURCES = ("_schema.py", "_rules.py", "_frozen.py", "_compile.py", "_core.py")

_validator: SchemaValidator | None | bool = False  # False: not looked for yet


def validate(data: object) -> Manifest | None:
    """`data` (the manifest as plain data) checked by the compiled schema,
    as a frozen manifest (typed as the model it stands for, as
    `AppConfig.manifest` is); None when it is not valid or the compiled
    schema is not current."""
    validator = _compiled()
    if validator is None:
        return None
    try:
        return validator.validate_python(data)  # type: ignore[no-any-return]
    except _extension().ValidationError:
        return None


def _compiled() -> SchemaValidator | None:
    global _validator
    if _validator is False:
        _validator = _build()
    return _validator  # type: ignore[return-value]


def _build() -> SchemaValidator | None:
    try:
        core = _extension()

        # A stale one may name a rule or a model that is gone: any failure
        # to load or build it means the models check instead.
        from lsq.manifest import _core_schema

        current = (
            _core_schema.PYDANTIC_CORE == core.__version__
            and _core_schema.PYDANTIC == _installed_pydantic()
            and _core_schema.SOURCES == sources_digest()
        )
        return core.SchemaValidator(_core_schema.SCHEMA) if current else None
    except Exception:  # noqa: BLE001 - whatever it was, the models decide
        return None


def _extension() -> ModuleType:
    """pydantic-core's compiled module, `pydantic_core._pydantic_core`, which
    holds all the check needs (`SchemaValidator`, `ValidationError`).

    When nothing has imported pydantic-core yet, the module is loaded on its
    own, without the package's `__init__`: that imports `typing_extensions`
    and the typed dicts of `pydantic_core.core_schema` for type hints, three
    quarters of the package's import (about 11 ms of the CLI's CPU on a first
    start, where the compiled module alone loads in about 3 ms). It is put in
    `sys.modules` under its own name, so that the package, should it be
    imported later in this process (the models explaining an error), takes
    this module instead of loading it again: a compiled module of this kind
    loads only once per process. The package then lacks it as an attribute
    (`pydantic_core._pydantic_core`); imports of it (`from ... import`,
    `import ... as`), which is how pydantic reaches it, find it all the
    same. Anything unexpected on the way: the package is imported as usual.
    """
    name = "pydantic_core._pydantic_core"
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    from importlib.machinery import ExtensionFileLoader, PathFinder
    from importlib.util import find_spec, module_from_spec

    package = find_spec("pydantic_core")
    where = package.submodule_search_locations if package is not None else None
    spec = PathFinder.find_spec(name, list(where)) if where else None
    if spec is None or not isinstance(spec.loader, ExtensionFileLoader):
        import pydantic_core._pydantic_core as usual

        return usual
    module = module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


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


MODEL_CONFIG = {"extra_fields_behavior": "forbid", "strict": True}
"""What pydantic makes of the models' `ConfigDict` (lsq.manifest._schema),
the same for all; `_compile` stops if a model's differs."""


def model_config(name: str) -> dict[str, Any]:
    return {**MODEL_CONFIG, "title": name}


def model_ref(name: str) -> str:
    """The name under which pydantic defines the model `name` when other
    parts of the schema refer to it."""
    return f"lsq.manifest._schema.{name}"


def model(name: str, fields: dict[str, Any], *, referenced: bool = False) -> dict[str, Any]:
    """The model `name` as a typed dict of `fields`, built into its frozen
    form; unknown keys refused, as the models refuse them. A `referenced`
    model is defined under its name (`model_ref`) for others to refer to."""
    config = model_config(name)
    typed = {"type": "typed-dict", "fields": fields, "config": config,
             "extra_behavior": config["extra_fields_behavior"]}
    node = {"type": "function-after", "schema": typed,
            "function": {"type": "no-info", "function": make(name)}}
    return {**node, "ref": model_ref(name)} if referenced else node


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
