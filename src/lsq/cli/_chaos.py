"""`lsq chaos`: add, list and remove faults; run a scenario."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from lsq.cli._commands import _client, _load
from lsq.cli._main import Context, cli
from lsq.errors import ControlError, UsageError

KIND_HELP = "latency, abort, reset, hang, bandwidth, truncate, partition, kill, pause, fail-health"


@cli.group()
def chaos() -> None:
    """Inject faults into the running app and check what holds."""


def _post(ctx: Context, path: str, body: object | None = None) -> Any:
    client = _client(_load(ctx))
    try:
        return client.post(path, body)
    except ControlError as exc:
        if exc.status == 400:
            raise UsageError(str(exc)) from None
        raise
    finally:
        client.close()


def _headers(values: tuple[str, ...]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise UsageError(f"--header: expected NAME=VALUE, found {value!r}")
        headers[name.strip()] = text.strip()
    return headers


@chaos.command()
@click.argument("kind", metavar="KIND")
@click.argument("service")
@click.option("--ms", type=float, help="latency: added delay in milliseconds.")
@click.option("--jitter", type=float, help="latency: up to this many ms more, at random.")
@click.option("--status", type=int, help="abort: the status to answer with (default 503).")
@click.option("--bytes-per-s", type=int, help="bandwidth: response body rate.")
@click.option("--after-bytes", type=int, help="truncate: cut the body after this many bytes.")
@click.option("--percent", type=float, help="Only this share of matching requests.")
@click.option("--prefix", help="Only requests whose path starts with this.")
@click.option("--method", help="Only requests with this method.")
@click.option("--header", "headers", multiple=True, help="Only requests with this NAME=VALUE.")
@click.option("--replica", help="Only this replica (for example orders-1).")
@click.option("--from", "source", help="Only calls made by this service (partition needs it).")
@click.option("--for", "duration", help="How long, such as 30s or 2m (default 5m).")
@click.option("--halt-if", help="End early when this holds, such as error_rate>0.5.")
@click.option("--json", "as_json", is_flag=True, help="Print the fault as JSON.")
@click.pass_obj
def add(ctx: Context, kind: str, service: str, headers: tuple[str, ...], as_json: bool,
        jitter: float | None, **options: Any) -> None:
    """Add a fault of KIND to SERVICE."""
    spec: dict[str, Any] = {"kind": kind, "service": service, "jitter_ms": jitter}
    spec.update(options)
    if headers:
        spec["headers"] = _headers(headers)
    spec = {k: v for k, v in spec.items() if v is not None}
    fault = _post(ctx, "/v1/chaos", spec)
    if as_json:
        click.echo(json.dumps(fault, indent=2))
        return
    click.echo(f"lsq: added {fault['id']}: {_describe(fault)}")


add.help = f"Add a fault of KIND ({KIND_HELP}) to SERVICE."


def _describe(fault: dict[str, Any]) -> str:
    bits = [f"{k}={v}" for k, v in {**fault["params"], **fault["match"]}.items()]
    detail = f" ({', '.join(bits)})" if bits else ""
    if fault["state"] == "done":
        return f"{fault['kind']} on {fault['service']}{detail}: {fault['reason']}"
    until = time.strftime("%H:%M:%S", time.localtime(fault["expires_at"]))
    halt = f", halts if {fault['halt_if']}" if fault.get("halt_if") else ""
    return f"{fault['kind']} on {fault['service']}{detail} until {until}{halt}"


@chaos.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_(ctx: Context, as_json: bool) -> None:
    """List the active faults."""
    client = _client(_load(ctx))
    try:
        faults: list[dict[str, Any]] = client.get("/v1/chaos")  # type: ignore[assignment]
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps(faults, indent=2))
        return
    if not faults:
        click.echo("no active faults")
        return
    for fault in faults:
        click.echo(f"{fault['id']}  {_describe(fault)}")


@chaos.command()
@click.argument("fault_id", metavar="ID", required=False)
@click.option("--all", "all_", is_flag=True, help="Remove every active fault.")
@click.pass_obj
def rm(ctx: Context, fault_id: str | None, all_: bool) -> None:
    """Remove the fault ID (see `lsq chaos list`), or --all."""
    if all_ == bool(fault_id):
        raise UsageError("lsq chaos rm: give one fault ID or --all")
    if all_:
        removed = _post(ctx, "/v1/chaos/clear")
        click.echo(f"lsq: removed {len(removed)} fault(s)")
        return
    fault = _post(ctx, f"/v1/chaos/{fault_id}/remove")
    click.echo(f"lsq: removed {fault['id']}: {fault['kind']} on {fault['service']}")


@chaos.command()
@click.argument("scenario", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--report", "report_path", type=click.Path(path_type=Path),
              help="Where to write the JSON report (default .lsq/chaos/NAME-TIME.json).")
@click.pass_obj
def run(ctx: Context, scenario: Path, report_path: Path | None) -> None:
    """Run SCENARIO: check its steady state before, during and after its faults.

    Exits 0 if the steady state held throughout, 1 if it broke."""
    from lsq.chaos import load_scenario, print_report, run_scenario

    app = _load(ctx)
    plan = load_scenario(scenario)
    report = run_scenario(plan, app.root, progress=lambda text: click.echo(f"lsq: {text}", err=True))
    if report_path is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        report_path = app.root / ".lsq" / "chaos" / f"{plan.slug}-{stamp}.json"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=2))
    print_report(report)
    click.echo(f"lsq: report written to {report_path}")
    sys.exit(0 if report["held"] else 1)
