"""The root `lsq` group and the one place that maps errors to exit codes."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from lsq.errors import LsqError


class Context:
    """Options shared by every command."""

    def __init__(self, files: tuple[Path, ...], debug: bool) -> None:
        self.file = files[0] if files else None
        self.overrides = list(files[1:])
        self.debug = debug


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-f",
    "--file",
    "files",
    type=click.Path(path_type=Path),
    multiple=True,
    help="The manifest; default: lsq.yaml here or in the nearest parent folder. "
    "Repeat to merge override files onto it, in order.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="lsq")
@click.pass_context
def cli(ctx: click.Context, files: tuple[Path, ...], debug: bool) -> None:
    """Run, supervise and route a microservice app from one lsq.yaml."""
    ctx.obj = Context(files, debug)


def _register() -> None:
    # Command modules import lazily-heavy parts inside their functions, so
    # `lsq --help` stays fast.
    import importlib

    from lsq.cli import _commands  # noqa: F401

    for name in ("_templates", "_dashboard", "_chaos", "_deploy"):
        try:
            importlib.import_module(f"lsq.cli.{name}")
        except ModuleNotFoundError as exc:  # command groups not installed or not yet built
            if exc.name != f"lsq.cli.{name}":
                raise


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; `lsq.cli.main` (the console script) registers the
    command modules first."""
    debug = "--debug" in (argv if argv is not None else sys.argv)
    try:
        cli.main(args=argv, standalone_mode=False)
    except LsqError as exc:
        if debug:
            raise
        click.echo(f"lsq: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("lsq: aborted", err=True)
        sys.exit(128 + signal.SIGINT)
    except click.ClickException as exc:
        # One line, as for every other error: what is wrong, and where the
        # command's usage is (click would print the usage and a hint first).
        message = " ".join(exc.format_message().split()).rstrip(".")
        if isinstance(exc, click.UsageError):
            path = exc.ctx.command_path if exc.ctx is not None else "lsq"
            click.echo(f"lsq: error: {message}; see `{path} --help`", err=True)
            sys.exit(2)
        click.echo(f"lsq: error: {message}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(128 + signal.SIGINT)
