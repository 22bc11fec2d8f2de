"""The dashboard in a real browser against a real app (see conftest.py)."""

from __future__ import annotations

import json
import re
import secrets
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from dashboard_helpers import Running, wait_for


def hit(url: str) -> None:
    with urllib.request.urlopen(url, timeout=10) as resp:
        resp.read()


@pytest.fixture(scope="module")
def page(demo: Running, browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.set_default_timeout(15_000)
    tab.goto(demo.url())
    yield tab
    context.close()
    assert not errors, errors


def test_opening_the_url_drops_the_token_from_the_address(
    demo: Running, page: Any
) -> None:
    assert page.url == f"http://127.0.0.1:{demo.port}/"
    assert "token" not in page.url


def test_services_appear_with_their_states(page: Any) -> None:
    for name in ("back", "front"):
        row = page.locator(f'tr.service[data-service="{name}"]')
        row.locator(".badge.s-running").first.wait_for()
    instance = page.locator('tr.instance[data-instance="front-0"]')
    assert instance.locator(".badge").inner_text() == "running"
    assert page.locator("#conn").inner_text() == "live"


def test_a_new_log_line_shows_up_live(demo: Running, page: Any) -> None:
    page.click('#tabs button[data-view="logs"]')
    tag = f"live-{secrets.token_hex(4)}"
    hit(f"{demo.address('front')}/order?tag={tag}")
    line = page.locator(".logline", has_text=f"front handled {tag}")
    line.wait_for()
    # Structured lines are shown as fields.
    assert f"tag={tag}" in line.inner_text()


def test_log_search_finds_old_lines_and_filters_by_service(
    demo: Running, page: Any
) -> None:
    tag = f"old-{secrets.token_hex(4)}"
    hit(f"{demo.address('front')}/order?tag={tag}")
    page.click('#tabs button[data-view="logs"]')
    page.select_option("#log-service", "back")
    page.fill("#log-query", tag)
    page.locator(".logline", has_text=f"back handled {tag}").wait_for()
    wait_for(
        lambda: page.locator(".logline").count() == 1,
        10,
        "only back's line to be shown",
    )
    page.fill("#log-query", "")
    page.select_option("#log-service", "")


def test_restart_button_restarts_and_counts(demo: Running, page: Any) -> None:
    page.click('#tabs button[data-view="services"]')
    before = demo.service("back")["instances"][0]
    page.click('tr.service[data-service="back"] button[data-action="restart"]')
    after = wait_for(
        lambda: (
            (i := demo.service("back")["instances"][0])["restarts"] > before["restarts"]
            and i["state"] == "running"
            and i
        ),
        30,
        "back to be restarted",
    )
    assert after["pid"] != before["pid"]
    cell = page.locator('tr.instance[data-instance="back-0"] td.restarts')
    wait_for(
        lambda: cell.inner_text() == str(after["restarts"]),
        10,
        "the page to show the new count",
    )


def test_a_chart_moves_under_traffic(demo: Running, page: Any) -> None:
    if not demo.status()["gateway"]:
        pytest.skip("the gateway is off: no traffic figures")
    page.click('#tabs button[data-view="traffic"]')
    front = demo.address("front")
    deadline = time.monotonic() + 20
    for n in range(200):
        hit(f"{front}/order?tag=chart{n}")
        series = demo.get("/ui/traffic")["services"].get("front", [])
        if any(p[1] > 0 for p in series) and n >= 10:
            break
        assert time.monotonic() < deadline, "no traffic point with requests/s > 0"
        time.sleep(0.05)
    card = page.locator('.chartcard[data-service="front"]')
    card.wait_for()
    wait_for(
        lambda: int(card.get_attribute("data-points") or 0) > 1,
        10,
        "points in the chart",
    )
    # The req/s canvas has drawn pixels in its plotting area (not only axes).
    drawn = page.evaluate("""() => {
        const c = document.querySelector('.chartcard[data-service="front"] canvas[data-kind="rps"]');
        const d = c.getContext('2d').getImageData(Math.floor(c.width * 0.8), 0, Math.ceil(c.width * 0.2), c.height - 20).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""")
    assert drawn > 0


def test_a_trace_across_two_services_shows_both_spans(demo: Running, page: Any) -> None:
    tag = f"trace-{secrets.token_hex(4)}"
    with urllib.request.urlopen(
        f"{demo.address('front')}/order?tag={tag}", timeout=10
    ) as resp:
        trace_id = json.loads(resp.read())["trace_id"]
    wait_for(
        lambda: any(
            t["trace_id"] == trace_id and t["spans"] == 2
            for t in demo.get("/ui/traces")["traces"]
        ),
        10,
        "both spans to arrive",
    )
    page.click('#tabs button[data-view="traces"]')
    page.click("#traces-refresh")
    page.click(f'#traces tr[data-trace="{trace_id}"]')
    detail = page.locator("#trace-detail")
    detail.locator('.span[data-service="front"]').wait_for()
    assert detail.locator('.span[data-service="back"]').count() == 1
    logs = detail.locator(".logline")
    wait_for(lambda: logs.count() == 2, 5, "the trace's two log lines")
    assert tag in logs.first.inner_text()


def test_topology_draws_the_dependency(page: Any) -> None:
    page.click('#tabs button[data-view="topology"]')
    page.locator('#topology g.node[data-service="front"]').wait_for()
    assert (
        page.locator('#topology path.edge[data-from="front"][data-to="back"]').count()
        == 1
    )


def test_scale_control_changes_the_replica_count(demo: Running, page: Any) -> None:
    if not demo.status()["gateway"]:
        pytest.skip("without the gateway, a service with one port runs one replica")
    page.click('#tabs button[data-view="services"]')
    page.fill('input[data-scale="back"]', "2")
    page.click('tr.service[data-service="back"] button[data-action="scale"]')
    page.locator('tr.instance[data-instance="back-1"]').wait_for()
    wait_for(
        lambda: (
            [i["state"] for i in demo.service("back")["instances"]] == ["running"] * 2
        ),
        30,
        "two running replicas of back",
    )
    page.fill('input[data-scale="back"]', "1")
    page.click('tr.service[data-service="back"] button[data-action="scale"]')
    page.locator('tr.instance[data-instance="back-1"]').wait_for(state="detached")


def test_a_crash_shows_the_crash_loop_with_next_retry_and_exit_code(
    demo: Running, page: Any
) -> None:
    page.click('#tabs button[data-view="services"]')
    before = demo.service("back")["instances"][0]
    try:
        hit(f"http://127.0.0.1:{before['port']}/crash")
    except OSError:
        pass  # the process died before answering, as asked
    row = page.locator('tr.instance[data-instance="back-0"]')
    # One crash shows as restarting (a crash loop is a repeated crash).
    row.locator(".badge.s-restarting").wait_for()
    title = row.get_attribute("title") or ""
    assert "next retry in" in title and not re.search(r"restart \d+ in", title)
    assert row.locator("td").nth(7).inner_text() == "3"
    service_row = page.locator('tr.service[data-service="back"]')
    assert service_row.locator(".badge").first.inner_text() == "restarting"
    wait_for(
        lambda: demo.service("back")["instances"][0]["state"] == "running",
        30,
        "back to come back",
    )
    row.locator(".badge.s-running").wait_for()
