"""The runtime commands: up, down, ps, logs, start, stop, restart, scale, validate, config."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lsq._signals import STOP_SIGNALS

from lsq.cli._main import Context, cli
from lsq.cli._daemon import run_runtime as _run_runtime
from lsq.cli._report import print_table as _print_table
from lsq.cli._up import check_startable, start_detached_and_follow
from lsq.errors import LsqError, RuntimeNotRunning, UsageError
from lsq.manifest import find_manifest

if TYPE_CHECKING:
    from lsq.manifest import AppConfig


@dataclass(frozen=True)
class AppFolder:
    """Where an app lives, for commands that talk to its runtime and need
    nothing from the manifest itself."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name


def _manifest_path(ctx: Context) -> Path:
    path = ctx.file if ctx.file is not None else find_manifest(Path.cwd())
    if not path.exists():
        raise UsageError(f"manifest {str(path)!r} does not exist; pass an existing file with -f")
    return path


def _folder(ctx: Context) -> AppFolder:
    return AppFolder(_manifest_path(ctx).resolve().parent)


def _load(ctx: Context, *, frozen: bool = False) -> AppConfig:
    """The app of the manifest `-f` names (or the nearest `lsq.yaml`), warnings
    printed; with `frozen`, checked without pydantic when it is valid (a
    runtime reads it so, lsq.manifest._core)."""
    from lsq.manifest import load

    path = _manifest_path(ctx)
    for extra in ctx.overrides:
        if not extra.exists():
            raise UsageError(f"override file {str(extra)!r} does not exist; check the -f arguments")
    app = load(path.resolve(), overrides=[p.resolve() for p in ctx.overrides], frozen=frozen)
    for warning in app.warnings:
        click.echo(f"lsq: warning: {warning}", err=True)
    return app


def _state_dir(app: AppConfig | AppFolder) -> Path:
    return app.root / ".lsq"


def _client(app: AppConfig | AppFolder, timeout: float | None = 30.0):  # type: ignore[no-untyped-def]
    from lsq.control import ControlClient

    return ControlClient(_state_dir(app), timeout=timeout)


def _check_names(app: AppConfig, names: tuple[str, ...]) -> None:
    for name in names:
        if name not in app.services:
            raise UsageError(
                f"no service {name!r} in {app.path.name}; known: {', '.join(app.services) or 'none'}"
            )


# -- up -----------------------------------------------------------------------------


@cli.command()
@click.option("-d", "--detach", is_flag=True, help="Run in the background; return once all is up.")
@click.option("--timeout", type=float, default=None, help="With -d: give up after this many seconds.")
@click.argument("services", nargs=-1)
@click.pass_obj
def up(ctx: Context, detach: bool, timeout: float | None, services: tuple[str, ...]) -> None:
    """Start the app (or SERVICES and what they depend on) and supervise it."""
    from lsq.cli._early import MAX_TIMEOUT

    if timeout is not None and not 0 < timeout <= MAX_TIMEOUT:
        raise UsageError(
            f"--timeout takes seconds above 0, up to {MAX_TIMEOUT:g}; found {timeout:g}; "
            "give a number such as 60"
        )
    if not detach:
        # A Ctrl-C before the runtime's handlers are in place would land in
        # whatever runs (an import may even swallow it): hold stop signals
        # until `serve` takes them, which then stops the app gracefully.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    app = _load(ctx, frozen=True)  # what a runtime reads; no pydantic if it is valid
    _check_names(app, services)
    check_startable(app)
    if detach:
        start_detached_and_follow(app, list(services), timeout)
        # Nothing is left to do, and tearing down this interpreter (the
        # manifest's models and every module) takes tens of milliseconds
        # that the caller would wait for: leave at once.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    from lsq.control import serve
    from lsq.manifest._cache import save
    from lsq.runtime import Printer

    save(app, _state_dir(app))  # for a later `lsq up -d` (lsq.cli._early)
    code = _run_runtime(serve(app, services=list(services) or None, printer=Printer(sys.stdout)))
    sys.exit(code)


# -- down ---------------------------------------------------------------------------


@cli.command()
@click.option("--volumes", is_flag=True, help="Also delete every service's data.")
@click.option("--yes", is_flag=True, help="Do not ask before deleting data.")
@click.option("--timeout", type=float, default=120.0, help="Seconds to wait for the stop.")
@click.pass_obj
def down(ctx: Context, volumes: bool, yes: bool, timeout: float) -> None:
    """Stop the running app; with --volumes, delete its data too."""
    app = _load(ctx) if volumes else _folder(ctx)
    from lsq.runtime import read_runtime_info
    from lsq.runtime._info import starting_runtime_info

    # A runtime still starting (`lsq up -d` a moment ago) is stopped too.
    info = starting_runtime_info(_state_dir(app), timeout)
    if info is None:
        click.echo(f"lsq: nothing is running for {app.name}")
    else:
        _client(app).post("/v1/down")
        deadline = time.monotonic() + timeout
        while read_runtime_info(_state_dir(app)) is not None:
            if time.monotonic() > deadline:
                raise LsqError(f"the runtime (pid {info.pid}) did not stop within {timeout:g}s")
            time.sleep(0.05)
        click.echo(f"lsq: {info.app or app.name} stopped")
    if volumes:
        _delete_data(app, yes)  # type: ignore[arg-type]


def _delete_data(app: AppConfig, yes: bool) -> None:
    from lsq.runtime import _data

    owners = [n for n, s in app.services.items() if _data.kind(s.data)]
    if not owners:
        click.echo("lsq: no service declares data; nothing to delete")
        return
    what = ", ".join(f"{n} ({_data.kind(app.services[n].data)})" for n in owners)
    if not yes and not click.confirm(f"Delete the data of {what}?", default=False):
        raise UsageError("not deleted; pass --yes to delete without asking")
    for name in owners:
        if _data.kind(app.services[name].data) == "sqlite":
            _data.drop_sqlite(_state_dir(app) / "data", name)
        else:
            _data.drop_postgres(app.name, name)
        click.echo(f"lsq: deleted the data of {name}")


# -- ps -----------------------------------------------------------------------------


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def ps(ctx: Context, as_json: bool) -> None:
    """Show services, their instances, state, health and addresses."""
    app = _folder(ctx)
    status = _client(app).get("/v1/status")
    if as_json:
        click.echo(json.dumps(status, indent=2))
        return
    _print_table(status)  # type: ignore[arg-type]


# -- logs ---------------------------------------------------------------------------


def parse_duration(text: str, option: str = "--since") -> float:
    """A command-line duration (30s, 5m, 2h, 1d, or seconds); `option` names
    where it was given, in the error."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?", text.strip())
    if not match:
        raise UsageError(f"{option} expects a duration such as 30s, 5m or 2h, found {text!r}")
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}[match.group(2)]
    return float(match.group(1)) * unit


@cli.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("--since", default=None, help="Only lines newer than this (30s, 5m, 2h).")
@click.option("--grep", "pattern", default=None, help="Only lines containing this text.")
@click.argument("services", nargs=-1)
@click.pass_obj
def logs(ctx: Context, follow: bool, since: str | None, pattern: str | None, services: tuple[str, ...]) -> None:
    """Print the services' logs, oldest first (works after `lsq down` too)."""
    app = _load(ctx)
    _check_names(app, services)
    from lsq.runtime import read_logs

    folder = _state_dir(app) / "logs"
    cutoff = time.time() - parse_duration(since) if since else 0.0
    names = list(services) or None
    # As wide as the app's longest instance name, so that the lines align.
    width = max([14, *(len(f"{n}-{max(s.replicas - 1, 0)}") for n, s in app.services.items())])
    last_ts = cutoff
    for record in read_logs(folder, names):
        last_ts = _print_record(record, cutoff, pattern, last_ts, width)
    while follow:
        time.sleep(0.3)
        for record in read_logs(folder, names):
            if float(record.get("ts", 0)) > last_ts:  # type: ignore[arg-type]
                last_ts = _print_record(record, last_ts, pattern, last_ts, width)


def _print_record(
    record: dict[str, object], cutoff: float, pattern: str | None, last: float, width: int
) -> float:
    ts = float(record.get("ts", 0))  # type: ignore[arg-type]
    if ts < cutoff:
        return last
    line = str(record.get("line", "")) + (" \u2026" if record.get("partial") else "")
    if pattern and pattern not in line:
        return max(last, ts)
    from lsq.runtime._logs import printable

    stamp = time.strftime("%H:%M:%S", time.localtime(ts))
    text = printable(line, colour=sys.stdout.isatty())
    click.echo(f"{stamp} {str(record.get('instance', '')):<{width}} | {text}")
    return max(last, ts)


# -- start, stop, restart, scale ----------------------------------------------------


def _service_command(verb: str) -> None:
    @cli.command(name=verb, help=f"{verb.capitalize()} SERVICE in the running app.")
    @click.argument("service")
    @click.pass_obj
    def command(ctx: Context, service: str) -> None:
        # A restart answers once each replica in turn is healthy again, which
        # the runtime bounds by the service's startup_timeout per replica: no
        # bound of the CLI's own would be right for every app.
        timeout = None if verb == "restart" else 30.0
        _client(_folder(ctx), timeout).post(_service_path(service, verb))
        click.echo(f"lsq: {service}: {verb} done")


def _service_path(name: str, verb: str) -> str:
    """The control API's path for `verb` on service `name`, which is
    quoted: a name such as `b/stop?` must not reach another endpoint."""
    from urllib.parse import quote

    return f"/v1/services/{quote(name, safe='')}/{verb}"


for _verb in ("start", "stop", "restart"):
    _service_command(_verb)


@cli.command()
@click.argument("assignments", nargs=-1, required=True)
@click.pass_obj
def scale(ctx: Context, assignments: tuple[str, ...]) -> None:
    """Set replica counts: lsq scale web=3 worker=2."""
    from lsq.manifest._frozen import as_found, cut
    from lsq.manifest._rules import MAX_REPLICAS

    app = _folder(ctx)
    pairs = []
    for item in assignments:
        name, sep, count = item.partition("=")
        if not name or not sep or not re.fullmatch(r"[+-]?[0-9]+", count):
            raise UsageError(f"expected SERVICE=N such as web=3, found {item!r}")
        if len(count) > 6 or not 0 <= int(count) <= MAX_REPLICAS:
            raise UsageError(
                f"replicas of {name} must be between 0 and {MAX_REPLICAS}, found {cut(count, 15)}; "
                f"{name}=0 stops every replica"
            )
        pairs.append((name, int(count)))
    client = _client(app)
    # Every name is checked before any service is scaled: all or nothing.
    status: Any = client.get("/v1/status")
    runs = {str(s["name"]) for s in status["services"] if not s.get("external")}
    for name, _ in pairs:
        if name not in runs:
            raise UsageError(f"no service {as_found(name)} that LSQ runs; "
                             f"known: {', '.join(sorted(runs))}")
    for name, replicas in pairs:
        client.post(_service_path(name, "scale"), {"replicas": replicas})
        click.echo(f"lsq: {name} scaled to {replicas}")


# -- validate, config ---------------------------------------------------------------


@cli.command()
@click.pass_obj
def validate(ctx: Context) -> None:
    """Check the manifest without starting anything."""
    app = _load(ctx)
    count = len(app.services)
    noun = "service" if count == 1 else "services"
    click.echo(f"lsq: {app.path.name} is valid: {count} {noun} ({', '.join(app.services)})")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def config(ctx: Context, as_json: bool) -> None:
    """Print the resolved manifest with where each value came from."""
    app = _load(ctx)
    from lsq.manifest import render_config

    click.echo(render_config(app, json=as_json))


# -- run ------------------------------------------------------------------------------


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("service")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def run(ctx: Context, service: str, command: tuple[str, ...]) -> None:
    """Run SERVICE's command (or COMMAND) once in the foreground, with the exact
    environment `lsq up` gives it: same PORT, addresses and DATABASE_URL."""
    app = _load(ctx)
    _check_names(app, (service,))
    svc = app.services[service]
    if svc.external is not None:
        raise UsageError(f"service {service!r} is external ({svc.external}); LSQ does not run it")
    from lsq.runtime import Runtime, Printer
    from lsq.runtime._spawn import argv_for
    from lsq.runtime._env import service_env

    runtime = Runtime(app, printer=Printer(None))
    addresses = runtime.addresses()
    runtime.dir.mkdir(parents=True, exist_ok=True)
    runtime.provision([service])
    env = service_env(app, service, instance=f"{service}-run", port=addresses.service_ports[service],
                      addresses=addresses, data_env=runtime.data_env(service))
    argv = list(command) or argv_for(svc.command or "", env)
    os.chdir(app.cwd(service))
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        raise LsqError(f"cannot run {argv[0]!r}: {exc.strerror}") from exc


# -- explain --------------------------------------------------------------------------


@cli.command()
@click.argument("service")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def explain(ctx: Context, service: str, as_json: bool) -> None:
    """Print SERVICE's effective resilience policy (timeouts, retries, ejection,
    breaker) with where each value came from, and its live state if running."""
    app = _load(ctx)
    _check_names(app, (service,))
    from lsq.gateway import effective_policy

    policy = effective_policy(app.services[service])
    live = _live_resilience(app, service)
    if as_json:
        click.echo(json.dumps({"policy": policy, "live": live}, indent=2))
        return
    click.echo(f"{service}: effective policy")
    for key, item in policy.items():
        if key == "routes":
            for route in item:
                overrides = ", ".join(f"{k}={v['value']}" for k, v in route.items() if k != "prefix")
                click.echo(f"  route {route['prefix']}: {overrides}")
        elif "value" in item:
            click.echo(f"  {key:<22} {item['value']!s:<10} # {_origin(app, service, key, item)}")
        else:
            click.echo(f"  {key}:")
            for sub, value in item.items():
                where = _origin(app, service, f"{key}.{sub}", value)
                click.echo(f"    {sub:<20} {value['value']!s:<10} # {where}")
    if live is not None:
        click.echo(f"  live: {json.dumps(live)}")


def _origin(app: AppConfig, service: str, dotted: str, item: dict[str, object]) -> str:
    if item.get("origin") == "default":
        return "default"
    return str(app.origin(f"services.{service}.policy.{dotted}"))


def _live_resilience(app: AppConfig, service: str) -> dict[str, object] | None:
    try:
        status = _client(app).get("/v1/status")
    except RuntimeNotRunning:
        return None
    for svc in status["services"]:  # type: ignore[index]
        if svc["name"] == service:
            return {
                "breaker": svc.get("breaker"),
                "replicas": {
                    i["id"]: {k: i.get(k) for k in ("ejected_until", "ejections", "ewma_ms")}
                    for i in svc["instances"]
                },
            }
    return None
