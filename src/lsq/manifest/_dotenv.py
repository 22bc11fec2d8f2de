"""The `.env` file grammar (docs/manifest.md, "`.env` files").

One assignment per line:

    [export ]KEY=value

- KEY is a letter or `_`, then letters, digits or `_`. Spaces around `=` are
  allowed. Blank lines and lines whose first non-blank character is `#` are
  skipped. A later line for the same KEY wins.
- Unquoted value: the rest of the line, cut at the first `#` that follows a
  space or tab (`abc#123` stays whole), then trimmed. `${VAR}` and `$$` are
  expanded.
- Double-quoted value: may span lines; the escapes `\\"`, `\\\\`, `\\n`, `\\t`
  and `\\$` are decoded (any other backslash is kept as written); `${VAR}` and
  `$$` are expanded.
- Single-quoted value: may span lines; taken exactly as written.
- After a closing quote, only blanks and a `# comment` may follow.

`${VAR}` sees keys defined earlier in the same file, then the caller's
lookup (earlier `.env` files of the service, then the environment).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from lsq.errors import ManifestError, Mark
from lsq.manifest._interpolate import InterpolationError, Lookup, expand

_ASSIGN = re.compile(r"[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)[ \t]*=")
_COMMENT = re.compile(r"[ \t]#")
_AFTER_QUOTE = re.compile(r"[ \t]*(?:#.*)?")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "$": "$$"}


@dataclass(frozen=True)
class DotenvEntry:
    """One assignment; `mark` is where its KEY is written."""

    key: str
    value: str
    mark: Mark


@dataclass(frozen=True)
class Dotenv:
    entries: tuple[DotenvEntry, ...]
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, str]:
        return {entry.key: entry.value for entry in self.entries}


def parse_dotenv(text: str, file: str, lookup: Lookup) -> Dotenv:
    """Parse `.env` text; `file` names it in marks and errors."""
    return _Parser(text, file, lookup).parse()


class _Parser:
    def __init__(self, text: str, file: str, lookup: Lookup) -> None:
        self.text = text.removeprefix("\ufeff").replace("\r\n", "\n")
        self.file = file
        self.outer = lookup
        self.starts = [0] + [i + 1 for i, c in enumerate(self.text) if c == "\n"]
        self.values: dict[str, str] = {}
        self.entries: list[DotenvEntry] = []
        self.warnings: list[str] = []

    def mark(self, pos: int) -> Mark:
        line = bisect.bisect_right(self.starts, pos) - 1
        return Mark(self.file, line + 1, pos - self.starts[line] + 1)

    def lookup(self, name: str) -> str | None:
        return self.values[name] if name in self.values else self.outer(name)

    def line_end(self, pos: int) -> int:
        end = self.text.find("\n", pos)
        return len(self.text) if end < 0 else end

    def parse(self) -> Dotenv:
        nul = self.text.find("\0")
        if nul >= 0:  # no program can be given it (no escape here makes one)
            raise ManifestError(
                "expected text a program can be given, found a NUL character",
                mark=self.mark(nul), fix="remove it",
            )
        pos = 0
        while pos < len(self.text):
            end = self.line_end(pos)
            line = self.text[pos:end]
            if line.strip() and not line.lstrip().startswith("#"):
                end = self.assignment(pos, end)
            pos = end + 1
        return Dotenv(tuple(self.entries), tuple(self.warnings))

    def assignment(self, pos: int, end: int) -> int:
        """Read the assignment on the line at `pos`; returns where it ends."""
        match = _ASSIGN.match(self.text, pos, end)
        if match is None:
            start = pos + len(self.text[pos:end]) - len(self.text[pos:end].lstrip())
            raise ManifestError(
                f"expected KEY=value, found {self.text[start:end].strip()!r}",
                mark=self.mark(start),
                fix="write one KEY=value per line; KEY is letters, digits and '_'",
            )
        key_pos, value_pos = match.start(1), match.end()
        raw = self.text[value_pos:end]
        stripped = raw.lstrip(" \t")
        if stripped[:1] in ("'", '"'):
            quote_pos = value_pos + len(raw) - len(stripped)
            value, end = self.quoted(quote_pos)
        else:
            comment = _COMMENT.search(raw)
            value = self.expand(
                raw[: comment.start() if comment else None].strip(), value_pos
            )
        self.add(match.group(1), value, key_pos)
        return end

    def quoted(self, start: int) -> tuple[str, int]:
        quote, text, pos = self.text[start], self.text, start + 1
        while pos < len(text) and text[pos] != quote:
            pos += 2 if quote == '"' and text[pos] == "\\" else 1
        if pos >= len(text):
            raise ManifestError(
                f"unclosed {'double' if quote == chr(34) else 'single'} quote",
                mark=self.mark(start),
                fix=f"end the value with {quote}",
            )
        end = self.line_end(pos)
        if not _AFTER_QUOTE.fullmatch(text, pos + 1, end):
            extra = text[pos + 1 : end].strip()
            raise ManifestError(
                f"unexpected text after the closing quote: {extra!r}",
                mark=self.mark(pos + 1),
                fix="put the whole value in the quotes, or start a comment with ' #'",
            )
        body = text[start + 1 : pos]
        if quote == "'":
            return body, end
        return self.expand(_unescape(body), start), end

    def expand(self, value: str, pos: int) -> str:
        try:
            expansion = expand(value, self.lookup)
        except InterpolationError as exc:
            raise ManifestError(exc.message, mark=self.mark(pos), fix=exc.fix) from exc
        for name in expansion.missing:
            self.warnings.append(
                f"{self.mark(pos)}: variable {name} is not set and has no default; "
                f"it expands to an empty string; set it or write ${{{name}:-default}}"
            )
        return expansion.value

    def add(self, key: str, value: str, pos: int) -> None:
        self.values[key] = value
        self.entries.append(DotenvEntry(key, value, self.mark(pos)))


def _unescape(body: str) -> str:
    out: list[str] = []
    pos = 0
    while pos < len(body):
        char = body[pos]
        if char == "\\" and pos + 1 < len(body) and body[pos + 1] in _ESCAPES:
            out.append(_ESCAPES[body[pos + 1]])
            pos += 2
            continue
        # `$$` stays `$$` here and becomes `$` in expand().
        out.append(char)
        pos += 1
    return "".join(out)
