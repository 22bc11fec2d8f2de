"""Process-level faults (kill, pause, fail-health), observed from outside."""

from __future__ import annotations

import time

import httpx
import psutil
from chelpers import App, wait_for


def test_kill_sends_sigkill_and_the_supervisor_restarts_the_replica(clean: App) -> None:
    old = clean.instance("web-1")
    result = clean.lsq("chaos", "add", "kill", "web", "--replica", "web-1")
    assert result.returncode == 0, result.stderr
    assert "SIGKILL" in result.stdout
    wait_for(lambda: not psutil.pid_exists(old["pid"]) or
             psutil.Process(old["pid"]).status() == psutil.STATUS_ZOMBIE, 5, "the old pid to die")
    new = wait_for(lambda: (i := clean.instance("web-1"))["pid"] not in (None, old["pid"])
                   and i["state"] == "running" and i, 15, "web-1 to run again")
    assert new["restarts"] == old["restarts"] + 1
    assert clean.instance("web-0")["pid"] == clean.instance("web-0")["pid"]
    assert any("killed web-1" in e["message"] for e in clean.events())


def test_pause_stops_the_group_until_the_fault_expires(clean: App) -> None:
    pid = clean.instance("web-0")["pid"]
    result = clean.lsq("chaos", "add", "pause", "web", "--replica", "web-0", "--for", "2s")
    assert result.returncode == 0, result.stderr
    assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
    # The paused replica fails its health check, so the gateway stops using it.
    wait_for(lambda: not clean.instance("web-0")["healthy"], 10, "web-0 to be unhealthy")
    wait_for(lambda: psutil.Process(pid).status() != psutil.STATUS_STOPPED, 10, "SIGCONT")
    wait_for(lambda: clean.instance("web-0")["healthy"], 10, "web-0 to be healthy again")
    assert clean.instance("web-0")["pid"] == pid  # resumed, not restarted
    messages = [e["message"] for e in clean.events()]
    assert any("paused web-0" in m for m in messages)
    assert any("ended (expired)" in m and "pause" in m for m in messages)


def test_removing_a_pause_resumes_at_once(clean: App) -> None:
    pid = clean.instance("web-1")["pid"]
    added = clean.lsq("chaos", "add", "pause", "web", "--replica", "web-1", "--json")
    fault_id = __import__("json").loads(added.stdout)["id"]
    assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
    assert clean.lsq("chaos", "rm", fault_id).returncode == 0
    assert psutil.Process(pid).status() != psutil.STATUS_STOPPED


def test_fail_health_takes_the_replica_out_of_routing(clean: App) -> None:
    result = clean.lsq("chaos", "add", "fail-health", "web", "--replica", "web-1", "--for", "30s")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: clean.instance("web-1")["state"] == "unhealthy", 10, "web-1 unhealthy")
    assert "on purpose" in clean.instance("web-1")["reason"]
    url = clean.address("web") + "/who"
    seen = {httpx.get(url, timeout=5).json()["instance"] for _ in range(12)}
    assert seen == {"web-0"}
    assert clean.lsq("chaos", "rm", "--all").returncode == 0
    wait_for(lambda: clean.instance("web-1")["healthy"], 10, "web-1 healthy again")


def test_fail_health_needs_a_health_check(clean: App) -> None:
    result = clean.lsq("chaos", "add", "fail-health", "caller")
    assert result.returncode == 2
    assert "has no health check" in result.stderr


def test_a_random_replica_is_chosen_when_none_is_named(clean: App) -> None:
    result = clean.lsq("chaos", "add", "pause", "web", "--for", "1s", "--json")
    chosen = __import__("json").loads(result.stdout)["match"]["replica"]
    assert chosen in ("web-0", "web-1")
    time.sleep(1.5)
    wait_for(lambda: clean.instance(chosen)["healthy"], 10, f"{chosen} healthy again")
