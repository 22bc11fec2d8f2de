"""The resolved manifest as text (`lsq config`), each value with its origin."""

from __future__ import annotations

import json as _json
import re

from pydantic import BaseModel

from lsq.manifest._config import AppConfig, Origin

_PLAIN = re.compile(r"^[A-Za-z0-9_./@%+-][A-Za-z0-9_./@%+:=, -]*$")
_NOT_PLAIN = re.compile(
    r"^(?:true|false|null|~|[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?(?:e[-+]?[0-9]+)?|"
    r"0x[0-9a-f]+|0o[0-7]+|\.inf|\.nan)$",
    re.IGNORECASE,
)

# A leaf is (dotted path, value, origin); a branch maps keys to leaves or branches.
Tree = dict[str, object]


def render_config(app: AppConfig, *, json: bool = False) -> str:
    """The resolved app, every leaf with where it came from.

    Text: YAML-like lines ending in `# lsq.yaml:12:5`, `# .env:3`, `# default`
    and so on. JSON: the same tree where each leaf is
    `{"value": ..., "origin": "..."}`.
    """
    tree = _tree(app)
    if json:
        return _json.dumps(_as_json(tree), indent=2, ensure_ascii=False)
    return "\n".join(_lines(tree, 0)) + "\n"


class _Leaf:
    def __init__(self, value: object, origin: Origin) -> None:
        self.value = value
        self.origin = origin


def _tree(app: AppConfig) -> Tree:
    name_origin = app.origin("name")
    services: Tree = {}
    for name, service in app.services.items():
        prefix = f"services.{name}"
        branch = _model(app, service, prefix)
        branch["env"] = {
            key: _Leaf(value, app.origin(f"{prefix}.env.{key}"))
            for key, value in app.env.get(name, {}).items()
        }
        branch["depends_on"] = {
            dep: _Leaf(cond, app.origin(f"{prefix}.depends_on.{dep}"))
            for dep, cond in service.depends_on.items()
        }
        services[name] = branch
    return {
        "name": _Leaf(app.name, name_origin),
        "services": services,
        "gateway": _model(app, app.manifest.gateway, "gateway"),
    }


def _model(app: AppConfig, model: BaseModel, prefix: str) -> Tree:
    branch: Tree = {}
    for field in type(model).model_fields:
        value = getattr(model, field)
        dotted = f"{prefix}.{field}"
        if isinstance(value, BaseModel):
            branch[field] = _model(app, value, dotted)
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            branch[field] = _Leaf([v.model_dump() for v in value], app.origin(dotted))
        else:
            branch[field] = _Leaf(value, app.origin(dotted))
    return branch


def _origin_text(origin: Origin) -> str:
    mark = origin.mark
    if mark is None:
        return origin.source
    if origin.source == "env_file":
        return f"{mark.file}:{mark.line}"
    if origin.source == "environment":
        return f"environment, {mark}"
    return str(mark)


def _lines(tree: Tree, depth: int) -> list[str]:
    pad = "  " * depth
    lines: list[str] = []
    for key, item in tree.items():
        if isinstance(item, _Leaf):
            lines.append(
                f"{pad}{key}: {_scalar(item.value)}  # {_origin_text(item.origin)}"
            )
        elif item:
            assert isinstance(item, dict)
            lines.append(f"{pad}{key}:")
            lines.extend(_lines(item, depth + 1))
        else:
            lines.append(f"{pad}{key}: {{}}")
    return lines


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        ambiguous = _NOT_PLAIN.match(value) or ": " in value or value.endswith(":")
        if _PLAIN.match(value) and not ambiguous and value == value.strip():
            return value
        return _json.dumps(value, ensure_ascii=False)
    return _json.dumps(value, ensure_ascii=False)


def _as_json(tree: Tree) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, item in tree.items():
        if isinstance(item, _Leaf):
            out[key] = {"value": item.value, "origin": _origin_text(item.origin)}
        else:
            assert isinstance(item, dict)
            out[key] = _as_json(item)
    return out
