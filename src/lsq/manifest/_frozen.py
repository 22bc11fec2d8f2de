"""A validated manifest as plain, read-only objects, for the runtime.

The schema (`lsq.manifest._schema`) is pydantic: it checks a manifest and
says where it is wrong. Importing pydantic and defining the models costs a
runtime about 85 ms of CPU on every start, to unpickle an app the CLI has
already checked, while the services it starts want the same cores (see
bench/README.md, "The floor as a program, and where the CPU goes"). So the
CLI hands a runtime the app with its manifest `freeze`-d: one class here per
schema model, of the same name and fields, holding the validated values.
A runtime only reads them; what it validates later (a release's manifest,
a fault) loads the schema then.

A test holds `FIELDS` to the schema's models. Here too: `plain`, the fields
of a model or of its frozen form as plain data, `replace` for either, and
`parse_duration`, which the schema and the fault API share. The compiled
schema (`lsq.manifest._core_schema`, which `lsq.manifest._core` validates
with) builds frozen models straight from a manifest.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

M = TypeVar("M")

FIELDS: dict[str, tuple[str, ...]] = {
    "Health": ("http", "tcp", "command", "interval", "timeout", "start_period",
               "failure_threshold", "success_threshold"),
    "Restart": ("policy", "backoff", "backoff_max", "max_restarts", "reset_after"),
    "Retries": ("attempts", "budget_ratio", "budget_per_s", "backoff_base", "backoff_cap"),
    "Outlier": ("consecutive_failures", "base_ejection", "max_ejected_ratio"),
    "Breaker": ("enabled",),
    "Policy": ("connect_timeout", "try_timeout", "timeout", "retries", "outlier", "breaker"),
    "Route": ("prefix", "strip", "policy"),
    "SmokeRequest": ("path", "method", "status", "contains"),
    "Analysis": ("min_requests", "max_error_increase", "max_p99_ratio", "p99_slack", "extend",
                 "on_inconclusive"),
    "Release": ("strategy", "steps", "step_time", "ready_timeout", "drain_timeout", "warm",
                "smoke", "analysis"),
    "Service": ("command", "cwd", "env", "env_file", "port", "replicas", "health", "depends_on",
                "restart", "startup_timeout", "stop_signal", "stop_timeout", "data", "external",
                "routes", "policy", "release"),
    "Gateway": ("ingress_port", "workers", "trusted_proxies", "header_timeout", "idle_timeout",
                "access_log"),
    "Manifest": ("name", "services", "gateway"),
}


class Frozen:
    """A schema model's validated values, read-only. Equal to another of the
    same class with equal fields (as the models are); hashable when every
    field is."""

    __slots__ = ()
    fields: tuple[str, ...] = ()

    def __init__(self, **values: Any) -> None:
        for name in self.fields:
            object.__setattr__(self, name, values[name])

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._values()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.fields)
        return f"{type(self).__name__}({inner})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_make, (type(self).__name__, self._values()))


CLASSES: dict[str, type[Frozen]] = {
    name: type(name, (Frozen,), {"__slots__": fields, "fields": fields, "__module__": __name__})
    for name, fields in FIELDS.items()
}


def _make(name: str, values: tuple[Any, ...]) -> Frozen:
    cls = CLASSES[name]
    return cls(**dict(zip(cls.fields, values, strict=True)))


def freeze(value: Any) -> Any:
    """`value` with every schema model in it (in lists and dicts too) as its
    frozen form; anything else as it is."""
    if type(value) in _ATOMS:
        return value
    names = _fields_of(value)
    if names is not None:
        cls = CLASSES[type(value).__name__]
        return cls(**{name: freeze(getattr(value, name)) for name in names})
    if isinstance(value, dict):
        return {key: freeze(item) for key, item in value.items()}
    if isinstance(value, list):
        return [freeze(item) for item in value]
    return value


def replace(model: M, **changes: Any) -> M:
    """`model` (a schema model or a frozen one) with `changes` to its fields."""
    if isinstance(model, Frozen):
        values = {name: getattr(model, name) for name in model.fields}
        return type(model)(**{**values, **changes})  # type: ignore[return-value]
    return model.model_copy(update=changes)  # type: ignore[attr-defined,no-any-return]


def is_model(value: object) -> bool:
    """Is `value` a schema model or the frozen form of one?"""
    return _fields_of(value) is not None


def _fields_of(value: object) -> tuple[str, ...] | dict[str, Any] | None:
    """The field names of a schema model or a frozen one; None otherwise."""
    if isinstance(value, Frozen):
        return value.fields
    return getattr(type(value), "__pydantic_fields__", None)  # a pydantic model


def plain(model: Any, *, exclude: frozenset[str] = frozenset(),
          exclude_none: bool = False) -> dict[str, object]:
    """A model's fields (or a frozen model's) as plain data, as `model_dump()`
    gives them for these models: strings, numbers, lists, dicts and nested
    models, without building pydantic's serializer."""
    out: dict[str, object] = {}
    names = _fields_of(model)
    assert names is not None, f"not a model: {model!r}"
    for name in names:
        if name in exclude:
            continue
        value = getattr(model, name)
        if type(value) not in _ATOMS:
            value = _plain_value(value, exclude_none)
        if value is None and exclude_none:
            continue
        out[name] = value
    return out


_ATOMS = frozenset({str, int, float, bool, type(None)})


def _plain_value(value: object, exclude_none: bool) -> object:
    if type(value) in _ATOMS:
        return value
    if _fields_of(value) is not None:
        return plain(value, exclude_none=exclude_none)
    if isinstance(value, dict):
        return {k: _plain_value(v, exclude_none) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_value(v, exclude_none) for v in value]
    return value


_LONGEST = 1000 * 365 * 86400  # seconds: a duration past it is a slip, not a wish

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> float:
    """`500ms`, `2s`, `1.5m`, `1h` or a bare number of seconds, as seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 2s or 500ms, found {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"expected a duration of 0 or more, found {as_found(value)}")
        return _bounded(value, value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return _bounded(float(match.group(1)) * _UNITS[match.group(2)], value)
    raise ValueError(f"expected a duration such as 2s or 500ms, found {as_found(value)}")


def _bounded(seconds: float, written: object) -> float:
    # Compared before float(): an int too large for a float raises OverflowError.
    if not seconds <= _LONGEST:  # too long, infinite, or NaN
        shown = cut(written) if isinstance(written, str) else as_found(written)
        raise ValueError(f"expected a duration of at most 1000 years, found {shown}")
    return float(seconds)


def as_found(value: object, limit: int = 40) -> str:
    """A scalar the way an error shows what it found: as written (a text in
    quotes), cut to `limit` characters."""
    if isinstance(value, int) and not isinstance(value, bool):
        import decimal

        text = str(decimal.Decimal(value))  # str() refuses an int of over 4300 digits
    else:
        text = repr(value)
    return cut(text, limit)


def cut(text: str, limit: int = 40) -> str:
    """`text`, or its start and `...` within `limit` characters: what an
    error quotes of a value, however long the value is."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."
