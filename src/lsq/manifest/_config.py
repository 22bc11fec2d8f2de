"""The resolved app configuration: the manifest plus where each value came from."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lsq.errors import Mark

if TYPE_CHECKING:  # a runtime reads apps without loading the schema (_frozen)
    from lsq.manifest._schema import Manifest, Service


@dataclass(frozen=True)
class Origin:
    """Where a resolved value came from.

    `source` is one of: "manifest" (the mark says where), "default" (the schema
    default), "env_file" (the mark points into the .env file), "environment"
    (interpolated from the caller's environment), "lsq" (set by LSQ itself).
    """

    source: str
    mark: Mark | None = None

    def __str__(self) -> str:
        return f"{self.source} {self.mark}" if self.mark else self.source


@dataclass(frozen=True)
class AppConfig:
    """An immutable, validated app: what `lsq up` runs and `lsq config` shows."""

    path: Path
    manifest: Manifest
    env: dict[str, dict[str, str]]
    origins: dict[str, Origin] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    overrides: tuple[Path, ...] = ()
    sources: dict[str, str] = field(default_factory=dict)
    """Every file the loader read (manifest, overrides, `.env` files): its
    path and `source_digest` of its text, for the checked-manifest cache."""
    programs: tuple[tuple[str, str, str], ...] = ()
    """Each command's program as the loader checked it: (program, cwd, PATH)."""
    environ_read: tuple[str, ...] = ()
    """The environment variables loading read, set or not (`${VAR}` in the
    manifest and `.env` files, and PATH): the cache is current while they are
    as they were, whatever else in the environment changed."""

    def frozen(self) -> AppConfig:
        """This app with its manifest as plain read-only objects
        (`lsq.manifest._frozen`): what the CLI hands a runtime, which can
        then read it without importing pydantic. Itself if it is frozen."""
        from lsq.manifest._frozen import Frozen, freeze

        if isinstance(self.manifest, Frozen):
            return self
        return replace(self, manifest=freeze(self.manifest))

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def name(self) -> str:
        return self.manifest.name or self.root.name

    @property
    def services(self) -> dict[str, Service]:
        return self.manifest.services

    def origin(self, dotted: str) -> Origin:
        """Origin of e.g. "services.web.port"; "default" when not recorded."""
        return self.origins.get(dotted, Origin("default"))

    def cwd(self, service: str) -> Path:
        cwd = self.services[service].cwd
        return (self.root / cwd).resolve() if cwd else self.root

    def dependency_order(self) -> list[str]:
        """Services sorted so that each comes after what it depends on."""
        done: list[str] = []
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen:
                return
            seen.add(name)
            for dep in self.services[name].depends_on:
                visit(dep)
            done.append(name)

        for name in self.services:
            visit(name)
        return done
