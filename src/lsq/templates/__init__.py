"""Service templates: `lsq init`, `lsq new`, `lsq templates`, `lsq template ...`.

Built on copier: built-in templates live in `builtin/<name>/`, are versioned as
git tags in a cache repository (see `_builtin`), and services keep copier's
`.copier-answers.yml`, so `update` can three-way-merge a new template version
with the developer's edits.
"""

from lsq.templates._app import (
    RESERVED,
    add_service,
    find_manifest,
    init_app,
    validate_name,
)
from lsq.templates._builtin import TemplateInfo, builtin_templates, materialize
from lsq.templates._generate import NewService, new_service
from lsq.templates._update import (
    FileChange,
    TemplateStatus,
    UpdateReport,
    dependencies_changed,
    status,
    update,
)

__all__ = [
    "RESERVED",
    "FileChange",
    "NewService",
    "TemplateInfo",
    "TemplateStatus",
    "UpdateReport",
    "add_service",
    "builtin_templates",
    "dependencies_changed",
    "find_manifest",
    "init_app",
    "materialize",
    "new_service",
    "status",
    "update",
    "validate_name",
]
