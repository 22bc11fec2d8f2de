"""The one place that calls copier, and turns its errors into LSQ errors."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import copier
from copier.errors import CopierError, UnsafeTemplateError
from ruamel.yaml import YAML

from lsq.errors import UsageError

ANSWERS_FILE = ".copier-answers.yml"


def copy_template(
    source: str,
    folder: Path,
    answers: dict[str, Any],
    *,
    trust: bool,
    vcs_ref: str | None = None,
) -> str | None:
    """Render `source` into `folder`; return the template version used."""
    try:
        with warnings.catch_warnings():
            # copier warns about dirty templates and similar: not errors for us.
            warnings.simplefilter("ignore")
            copier.run_copy(
                source,
                folder,
                data=answers,
                vcs_ref=vcs_ref,
                defaults=True,
                overwrite=True,
                quiet=True,
                unsafe=trust,
            )
    except UnsafeTemplateError as exc:
        raise UsageError(
            f"template {source} runs code on your machine ({exc}); read it, then "
            "pass --trust to allow it"
        ) from exc
    except CopierError as exc:
        raise UsageError(f"template {source}: {exc}") from exc
    return _recorded_version(folder)


def _recorded_version(folder: Path) -> str | None:
    # The worker's clone of the template is gone by now; the answers file
    # records the tag copier used.
    path = folder / ANSWERS_FILE
    if not path.is_file():
        return None
    answers = YAML(typ="safe").load(path.read_text()) or {}
    commit = answers.get("_commit")
    return str(commit) if commit else None


def run_update(folder: Path, *, vcs_ref: str | None, trust: bool) -> None:
    """copier's update in `folder` (a clean git repository), from the template
    its answers file names."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            copier.run_update(
                folder,
                vcs_ref=vcs_ref,
                defaults=True,
                overwrite=True,
                quiet=True,
                conflict="inline",
                unsafe=trust,
                skip_answered=True,
            )
    except UnsafeTemplateError as exc:
        raise UsageError(
            f"{folder.name}: the template's update runs code on your machine ({exc}); "
            "read it, then pass --trust to allow it"
        ) from exc
    except CopierError as exc:
        raise UsageError(f"{folder}: update failed: {exc}") from exc
