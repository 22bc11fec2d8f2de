"""Release commands: deploy, promote, rollback, history (see docs/deploy.md)."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from lsq.cli._commands import _check_names, _client, _load, _state_dir, parse_duration
from lsq.cli._main import Context, cli
from lsq.errors import LsqError, UsageError

FOLLOW_POLL = 0.2
DONE_OK = ("succeeded", "warm")
DONE_BAD = ("rolled-back", "aborted", "interrupted")


def _steps(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--steps expects percentages such as 5,25,50,100, found {text!r}") from None


@cli.command()
@click.argument("service")
@click.option("--strategy", type=click.Choice(["blue-green", "canary"]), default=None,
              help="Default: release.strategy in lsq.yaml, else blue-green.")
@click.option("--steps", default=None, help="Canary traffic steps in percent: 5,25,50,100.")
@click.option("--step-time", default=None, help="Canary time per step: 30s, 2m.")
@click.option("--ref", default=None, help="Run this git commit, branch or tag (a worktree).")
@click.option("--pause", is_flag=True, help="Hold the release in progress at its step.")
@click.option("--resume", is_flag=True, help="Go on with a paused release.")
@click.option("--follow/--no-follow", default=True, help="Print progress until it ends.")
@click.option("--timeout", type=float, default=3600.0, help="Stop following after this long.")
@click.pass_obj
def deploy(ctx: Context, service: str, strategy: str | None, steps: str | None,
           step_time: str | None, ref: str | None, pause: bool, resume: bool,
           follow: bool, timeout: float) -> None:
    """Roll out SERVICE's entry in lsq.yaml (or --ref) as a new version."""
    app = _load(ctx)
    _check_names(app, (service,))
    client = _client(app)
    if pause or resume:
        client.post(f"/v1/deploy/{service}/{'pause' if pause else 'resume'}")
        click.echo(f"lsq: release of {service} {'paused' if pause else 'resumed'}")
        return
    options: dict[str, Any] = {"strategy": strategy, "steps": _steps(steps), "ref": ref}
    if step_time:
        options["step_time"] = parse_duration(step_time, "--step-time")
    record = client.post(f"/v1/deploy/{service}", options)
    click.echo(f"lsq: {service}: release {record['version']} "  # type: ignore[index]
               f"({record['strategy']}) replacing {record['previous'] or 'the running one'}")  # type: ignore[index]
    if follow:
        _follow(client, service, timeout)


def _follow(client: Any, service: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    shown = 0
    while True:
        record = client.get(f"/v1/deploy/{service}")
        for entry in record["log"][shown:]:
            click.echo(f"  {entry['t']:7.2f}s  {entry['message']}")
        shown = len(record["log"])
        if record["state"] in DONE_OK:
            _done(record)
            return
        if record["state"] in DONE_BAD:
            raise LsqError(f"release {record['version']} of {service} {record['state']}: "
                           f"{record['reason']}")
        if time.monotonic() > deadline:
            raise LsqError(f"still {record['phase']} after {timeout:g}s; it goes on in the "
                           f"runtime: `lsq deploy {service} --pause`, `lsq rollback {service}`")
        time.sleep(FOLLOW_POLL)


def _done(record: dict[str, Any]) -> None:
    took = record["timings"].get("switched")
    if record["state"] == "warm":
        click.echo(f"lsq: all traffic on {record['version']} after {took}s; "
                   f"{record['previous']} stays warm for a while: "
                   f"`lsq rollback {record['service']}` switches back at once")
    else:
        click.echo(f"lsq: release {record['version']} succeeded; all traffic on it after {took}s")


def _control(verb: str, help_text: str) -> None:
    @cli.command(name=verb, help=help_text)
    @click.argument("service")
    @click.pass_obj
    def command(ctx: Context, service: str) -> None:
        app = _load(ctx)
        _check_names(app, (service,))
        record = _client(app).post(f"/v1/deploy/{service}/{verb}")
        click.echo(f"lsq: {service}: {verb} of release {record['version']} asked")  # type: ignore[index]


_control("promote", "Skip the release of SERVICE in progress to 100% on the new version.")
_control("rollback", "Send all traffic of SERVICE back to the old version, stop the new one.")


@cli.command()
@click.argument("service")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("-n", "--limit", type=int, default=20, help="How many releases.")
@click.pass_obj
def history(ctx: Context, service: str, as_json: bool, limit: int) -> None:
    """Releases of SERVICE, newest first (works after `lsq down` too)."""
    app = _load(ctx)
    _check_names(app, (service,))
    from lsq.deploy import ReleaseStore

    db = _state_dir(app) / "state.db"
    if not db.exists():
        raise UsageError(f"no state in {str(db.parent)!r} yet; run `lsq up` first")
    store = ReleaseStore(db)
    try:
        rows = store.history(service, limit=limit)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(_history_line(row))


def _history_line(row: dict[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["started"]))
    ident = row.get("identity", {})
    code = (ident.get("commit") or "no git")[:10] + ("+dirty" if ident.get("dirty") else "")
    took = row["timings"].get("switched") or row["timings"].get("back_on_old")
    timing = f" {took}s" if took is not None else ""
    last = next((a for a in reversed(row.get("analyses", [])) if a), None)
    figures = ""
    if last:
        new, old = last["new"], last["old"]
        figures = (f" [{row['version']} {new['requests']} req {new['error_rate']:.1%} err, "
                   f"{row['previous']} {old['requests']} req {old['error_rate']:.1%} err]")
    return (f"{when}  {row['version']:<5} {row['strategy']:<10} {row['state']:<12}"
            f"{timing} {code} {ident.get('hash', '')} {row['reason']}{figures}")
