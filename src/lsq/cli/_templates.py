"""`lsq init`, `lsq new`, `lsq templates` and `lsq template status|update`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from lsq.cli._main import Context, cli
from lsq.errors import UsageError


def _manifest(ctx: click.Context) -> Path:
    from lsq.templates import find_manifest

    obj = ctx.find_object(Context)
    return find_manifest(obj.file if obj else None)


@cli.command()
@click.argument("folder", type=click.Path(path_type=Path), default=".")
@click.option("--name", help="App name; default: the folder's name.")
def init(folder: Path, name: str | None) -> None:
    """Create an app: lsq.yaml, README.md and .gitignore in FOLDER."""
    from lsq.templates import init_app, validate_name

    if name is not None:
        validate_name(name, what="app name")
    for path in init_app(folder, name=name):
        click.echo(f"wrote {path}")
    click.echo("next: lsq new NAME --template python")


@cli.command()
@click.argument("name")
@click.option(
    "-t",
    "--template",
    default="python",
    show_default=True,
    help="A built-in template (see `lsq templates`), a folder or a git URL.",
)
@click.option(
    "--data",
    type=click.Choice(["sqlite", "postgres", "none"]),
    default="sqlite",
    show_default=True,
    help="The service's data store.",
)
@click.option("--port", type=int, default=None, help="Fixed port; default: assigned.")
@click.option("--force", is_flag=True, help="Write into an existing folder.")
@click.option(
    "--trust", is_flag=True, help="Let a custom template run its tasks and migrations."
)
@click.option(
    "--no-install", is_flag=True, help="Do not install dependencies (venv / npm ci)."
)
@click.pass_context
def new(
    ctx: click.Context,
    name: str,
    template: str,
    data: str,
    port: int | None,
    force: bool,
    trust: bool,
    no_install: bool,
) -> None:
    """Generate service NAME next to lsq.yaml and add it to lsq.yaml."""
    from lsq.templates import new_service

    manifest = _manifest(ctx)
    result = new_service(
        manifest,
        name,
        template=template,
        data=data,
        port=port,
        force=force,
        trust=trust,
        install=not no_install,
    )
    version = f" {result.version}" if result.version else ""
    click.echo(f"created {result.folder} from {result.template}{version}")
    if result.install_seconds is not None:
        click.echo(f"installed dependencies in {result.install_seconds:.1f}s")
    click.echo(f"added service {name!r} to {manifest}; run: lsq up")


@cli.command("templates")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def templates_(as_json: bool) -> None:
    """List the built-in templates and their versions."""
    from lsq.templates import builtin_templates

    found = builtin_templates()
    if as_json:
        click.echo(json.dumps([{"name": t.name, "version": t.version} for t in found]))
        return
    for info in found:
        click.echo(f"{info.name:<12} {info.version}")


@cli.group()
def template() -> None:
    """See and update the templates the services were made from."""


@template.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def template_status(ctx: click.Context, as_json: bool) -> None:
    """Each service's template, version and whether it is behind."""
    from lsq.templates import status

    rows = status(_manifest(ctx))
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "service": r.service,
                        "template": r.template,
                        "version": r.version,
                        "latest": r.latest,
                        "behind": r.behind,
                    }
                    for r in rows
                ]
            )
        )
        return
    for r in rows:
        if r.template is None:
            click.echo(f"{r.service:<16} (not from a template)")
            continue
        state = f"behind: {r.latest} available" if r.behind else "up to date"
        click.echo(f"{r.service:<16} {r.template:<12} {r.version or '?':<10} {state}")


@template.command("update")
@click.argument("service", required=False)
@click.option(
    "--all", "all_", is_flag=True, help="Update every service that is behind."
)
@click.option(
    "--force",
    is_flag=True,
    help="Where a file conflicts, take the template's version (your edits "
    "to that file are lost).",
)
@click.option(
    "--trust", is_flag=True, help="Let a custom template run its tasks and migrations."
)
@click.option("--no-install", is_flag=True, help="Do not reinstall dependencies.")
@click.pass_context
def template_update(
    ctx: click.Context,
    service: str | None,
    all_: bool,
    force: bool,
    trust: bool,
    no_install: bool,
) -> None:
    """Bring SERVICE (or --all) to its template's current version."""
    from lsq.templates import status

    if bool(service) == all_:
        raise UsageError(
            "template update: give one SERVICE or --all, not both or neither"
        )
    manifest = _manifest(ctx)
    if all_:
        names = [r.service for r in status(manifest) if r.behind]
        if not names:
            click.echo("every service is up to date")
    else:
        names = [service or ""]
    conflicts = 0
    for name in names:
        conflicts += _update_one(
            manifest, name, force=force, trust=trust, install=not no_install
        )
    if conflicts:
        raise UsageError(
            f"{conflicts} file(s) have conflicts; resolve the <<<<<<< markers, "
            "or run again with --force to take the template's version"
        )


def _update_one(
    manifest: Path, name: str, *, force: bool, trust: bool, install: bool
) -> int:
    from lsq.templates import dependencies_changed, update
    from lsq.templates._generate import reinstall

    report = update(manifest, name, force=force, trust=trust)
    if report.old_version == report.new_version and not report.changes:
        click.echo(f"{name}: already at {report.new_version}")
        return 0
    click.echo(f"{name}: {report.old_version} -> {report.new_version}")
    for change in report.changes:
        click.echo(f"  {change.action:<11} {change.path}")
    if install and dependencies_changed(report):
        reinstall(manifest.parent, report.service, manifest)
        click.echo("  reinstalled dependencies")
    return len(report.conflicts)
