"""Finding an app's manifest: cheap, so that commands which only need the app's
folder (`lsq ps`, `lsq down`) do not pay for the schema."""

from __future__ import annotations

from pathlib import Path

from lsq.errors import ManifestError

MANIFEST_NAMES = ("lsq.yaml", "lsq.yml")


def find_manifest(start: Path) -> Path:
    """`lsq.yaml` (or `lsq.yml`) in `start` or the nearest folder above it."""
    start = start.resolve()
    folder = start if start.is_dir() else start.parent
    for candidate in (folder, *folder.parents):
        found = [candidate / n for n in MANIFEST_NAMES if (candidate / n).is_file()]
        if len(found) > 1:
            raise ManifestError(
                f"{candidate}: both lsq.yaml and lsq.yml exist",
                fix="keep one of them",
            )
        if found:
            return found[0]
    raise ManifestError(
        f"no lsq.yaml in {folder} or any folder above it",
        fix="run lsq from your app's folder, or create lsq.yaml there",
    )
