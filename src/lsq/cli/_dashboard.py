"""`lsq dashboard` (the URL of the web dashboard) and `lsq top` (a live table)."""

from __future__ import annotations

import time
from typing import Any

import click

from lsq.cli._commands import _client, _load, _state_dir
from lsq.cli._main import Context, cli
from lsq.errors import RuntimeNotRunning


@cli.command()
@click.option(
    "--open", "open_browser", is_flag=True, help="Open it in the default browser too."
)
@click.pass_obj
def dashboard(ctx: Context, open_browser: bool) -> None:
    """Print the dashboard's URL (with the token, for one visit)."""
    from lsq.dashboard import dashboard_url
    from lsq.runtime import read_runtime_info

    app = _load(ctx)
    info = read_runtime_info(_state_dir(app))
    if info is None:
        raise RuntimeNotRunning(
            f"no runtime is running for the app in {str(app.root)!r}; start it with `lsq up -d`"
        )
    token = (_state_dir(app) / "token").read_text().strip()
    url = dashboard_url(info.port, token)
    click.echo(url)
    if open_browser:
        import webbrowser

        webbrowser.open(url)


@cli.command()
@click.option(
    "--interval",
    type=float,
    default=2.0,
    show_default=True,
    help="Seconds between refreshes.",
)
@click.option(
    "-n",
    "--iterations",
    type=int,
    default=0,
    help="Stop after N refreshes (0: until Ctrl-C).",
)
@click.pass_obj
def top(ctx: Context, interval: float, iterations: int) -> None:
    """Live table of services and replicas: state, restarts, CPU, memory, traffic."""
    from rich.console import Console
    from rich.live import Live

    app = _load(ctx)
    client = _client(app)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # piped: no terminal width to fit, do not squeeze
    interval = max(0.2, interval)
    try:
        if not console.is_terminal:
            # Piped: print one table per refresh instead of redrawing in place.
            for _ in _ticks(iterations or 1, interval):
                console.print(_table(client.get("/ui/status")))
            return
        with Live(console=console, auto_refresh=False) as live:
            for _ in _ticks(iterations, interval):
                live.update(_table(client.get("/ui/status")), refresh=True)
    finally:
        client.close()


def _ticks(count: int, interval: float) -> Any:
    n = 0
    while count == 0 or n < count:
        if n:
            time.sleep(interval)
        yield n
        n += 1


_STYLE = {
    "running": "green",
    "healthy": "green",
    "crash-loop": "red",
    "backoff": "red",
    "failed": "red",
    "unhealthy": "red",
    "stopped": "dim",
    "exited": "dim",
}


def _table(status: dict[str, Any]) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(
        title=f"{status['app']}  (runtime pid {status['pid']})",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        expand=False,
    )
    table.add_column("service", overflow="fold")
    for name in ("state", "pid", "up", "rst", "cpu%", "MiB", "req/s", "err%", "p95ms"):
        justify = "left" if name == "state" else "right"
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for svc in status["services"]:
        t = svc.get("traffic")
        table.add_row(
            f"[bold]{svc['name']}[/]",
            _styled(svc["state"]),
            "",
            "",
            "",
            "",
            "",
            _num(t[1]) if t else "",
            _num(t[2] * 100) if t else "",
            _num(t[4]) if t else "",
        )
        for inst in svc["instances"]:
            table.add_row(
                f"  {inst['id']}",
                _styled(inst["state"]),
                str(inst["pid"] or ""),
                _uptime(inst.get("uptime")),
                str(inst["restarts"]),
                _num(inst.get("cpu")),
                _mem(inst.get("memory")),
                "",
                "",
                "",
            )
    return table


def _styled(state: str) -> str:
    style = _STYLE.get(state, "yellow")
    return f"[{style}]{state}[/]"


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _mem(value: int | None) -> str:
    return "" if value is None else f"{value / (1 << 20):.1f}"


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"
