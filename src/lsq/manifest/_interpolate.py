"""`${VAR}` interpolation, shared by `lsq.yaml` and `.env` files.

Grammar (docs/manifest.md, "Interpolation"):

    ${NAME}           the variable's value; unset gives "" and a warning
    ${NAME:-default}  the default when NAME is unset or empty; the default may
                      itself contain ${...}
    $$                a literal $
    $ anything else   a literal $ (so `$HOME` reaches the shell untouched)

NAME is a letter or `_`, then letters, digits or `_`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Lookup = Callable[[str], str | None]

# Variables LSQ sets per instance when it starts one; a command's `${PORT}`
# is left for then (docs/manifest.md, "Interpolation").
INSTANCE_VARIABLES = frozenset(
    {"PORT", "DATABASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"}
)


def is_instance_variable(name: str) -> bool:
    """Whether LSQ sets `name` per instance: PORT and the like, any LSQ_*."""
    return name in INSTANCE_VARIABLES or name.startswith("LSQ_")


@dataclass(frozen=True)
class Expansion:
    """The result of expanding one string."""

    value: str
    used: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


class InterpolationError(ValueError):
    """Bad `${` syntax; `offset` is where in the string it starts."""

    def __init__(self, message: str, offset: int, fix: str) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.fix = fix


def expand(
    text: str, lookup: Lookup, *, keep: Callable[[str], bool] | None = None
) -> Expansion:
    """Expand every `${...}` and `$$` in `text`.

    A `${NAME}` or `${NAME:-default}` whose NAME `keep` accepts is left as
    written (LSQ sets such names per instance, after loading).
    """
    if "$" not in text:
        return Expansion(text)
    parser = _Parser(text, lookup, keep)
    value, _ = parser.run(0, active=True, inside=None)
    return Expansion(value, tuple(parser.used), tuple(parser.missing))


class _Parser:
    def __init__(
        self, text: str, lookup: Lookup, keep: Callable[[str], bool] | None
    ) -> None:
        self.text = text
        self.lookup = lookup
        self.keep = keep
        self.used: list[str] = []
        self.missing: list[str] = []

    def run(self, pos: int, *, active: bool, inside: int | None) -> tuple[str, int]:
        """Read until the end, or until the `}` closing the `${` at `inside`."""
        text, out = self.text, []
        while pos < len(text):
            char = text[pos]
            if char == "}" and inside is not None:
                return "".join(out), pos + 1
            if text.startswith("$$", pos):
                out.append("$")
                pos += 2
            elif text.startswith("${", pos):
                value, pos = self.braced(pos, active=active)
                out.append(value)
            else:
                out.append(char)
                pos += 1
        if inside is not None:
            raise self.unclosed(inside)
        return "".join(out), pos

    def braced(self, start: int, *, active: bool) -> tuple[str, int]:
        text = self.text
        match = _NAME.match(text, start + 2)
        if match is None:
            found = text[start : start + 12]
            raise InterpolationError(
                f"expected a variable name after '${{', found {found!r}",
                start,
                "write ${NAME} or ${NAME:-default}, or $${ for a literal '${'",
            )
        name, pos = match.group(), match.end()
        if self.keep is not None and self.keep(name):
            return self.kept(start, pos)
        if text.startswith(":-", pos):
            value = self.lookup(name) if active else None
            default, pos = self.run(pos + 2, active=active and not value, inside=start)
            if value:
                self.used.append(name)
                return value, pos
            return default, pos
        if pos >= len(text):
            raise self.unclosed(start)
        if text[pos] != "}":
            raise InterpolationError(
                f"unexpected {text[pos]!r} in '${{{name}'",
                pos,
                "write ${NAME} or ${NAME:-default}",
            )
        value = self.lookup(name) if active else ""
        if active:
            (self.missing if value is None else self.used).append(name)
        return value or "", pos + 1

    def kept(self, start: int, pos: int) -> tuple[str, int]:
        """`${NAME}` or `${NAME:-default}` as written (syntax still checked)."""
        text = self.text
        if text.startswith(":-", pos):
            _, end = self.run(pos + 2, active=False, inside=start)
            return text[start:end], end
        if pos >= len(text):
            raise self.unclosed(start)
        if text[pos] != "}":
            raise InterpolationError(
                f"unexpected {text[pos]!r} in '${{{text[start + 2 : pos]}'",
                pos,
                "write ${NAME} or ${NAME:-default}",
            )
        return text[start : pos + 1], pos + 1

    def unclosed(self, start: int) -> InterpolationError:
        return InterpolationError(
            f"unclosed '${{' in {self.text!r}",
            start,
            "close it with '}', or write $${ for a literal '${'",
        )
