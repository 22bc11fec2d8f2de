"""The release controller: rolls a new version of a service out beside the
running one and moves traffic to it, or back.

A release, step by step (docs/deploy.md):

1. re-read `lsq.yaml`; the new version takes the service's command, env,
   folder (or a `--ref` worktree), health check and stop settings from it;
2. start as many replicas of it as the service has, at gateway weight 0,
   and wait until all are healthy (`release.ready_timeout`);
3. send the smoke requests to each new replica directly;
4. blue-green: all traffic at once, the old version kept warm for
   `release.warm` so a rollback is one table push; canary: traffic in steps,
   each judged by `lsq.deploy._analysis` before the next;
5. the old version's replicas are drained and stopped.

Any failure before the end sends all traffic back to the old version and
stops the new one. Traffic moves by weights in the routing table, and a
replica is stopped only after the gateway stopped sending it requests and
those in flight ended, so a release drops no request.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from lsq.deploy._analysis import Verdict, figures, judge
from lsq.deploy._history import ACTIVE_STATES, ReleaseStore
from lsq.deploy._version import (
    Identity,
    checkout,
    identify,
    remove_checkout,
    tree_state_at_start,
)

from lsq.errors import LsqError, UsageError
from lsq.manifest import AppConfig
from lsq.registry import State
from lsq.runtime._supervisor import Replica, Version

if TYPE_CHECKING:
    import httpx

    from lsq.manifest._schema import Release as ReleaseSettings

    from lsq.runtime import Runtime

POLL = 0.25
SMOKE_TIMEOUT = 5.0
CRASHES_BEFORE_ABORT = 2
FINAL_STATES = ("succeeded", "rolled-back", "aborted", "interrupted", "started")


class Abort(Exception):
    """Ends a release early; the old version keeps (or gets back) all traffic."""

    def __init__(self, reason: str, *, state: str = "rolled-back") -> None:
        self.reason = reason
        self.state = state
        super().__init__(reason)


class Release:
    """One release in progress: its record (what history keeps) and controls."""

    def __init__(self, record: dict[str, Any], settings: ReleaseSettings) -> None:
        self.record = record
        self.settings = settings
        self.paused = False
        self.command = ""  # "promote" or "rollback", set by the API
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    @property
    def service(self) -> str:
        return str(self.record["service"])

    def note(self, message: str) -> None:
        started = float(self.record["started"])
        self.record["log"].append({"t": round(time.time() - started, 3), "message": message})

    def mark(self, timing: str) -> None:
        self.record["timings"][timing] = round(time.time() - float(self.record["started"]), 3)

    async def hold(self, seconds: float) -> None:
        """Wait `seconds` of unpaused time, or until a command arrives."""
        left = seconds
        while left > 0 or self.paused:
            if self.command:
                return
            self.wake.clear()
            step = min(left, POLL) if not self.paused else POLL
            began = time.monotonic()
            try:
                await asyncio.wait_for(self.wake.wait(), max(step, 0.001))
            except TimeoutError:
                pass
            if not self.paused:
                left -= time.monotonic() - began

    def check(self) -> None:
        if self.command == "rollback":
            raise Abort("rolled back by `lsq rollback`")


class ReleaseController:
    """Releases of every service of one runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        assert runtime.store is not None
        self.store = ReleaseStore(runtime.dir / "state.db")
        self.releases: dict[str, Release] = {}
        runtime.listen(self._on_event)

    # -- start-up -------------------------------------------------------------

    def recover(self) -> None:
        """Close releases a dead runtime left open; label each service's version.

        Called before the services start: they run the manifest's current
        entry, all traffic on it, whatever a release was doing before.
        """
        sup = self.runtime.sup
        assert sup is not None
        app = self.runtime.app
        tree = tree_state_at_start(app.root)  # started by lsq.control.serve
        with self.store.batch():  # one commit for all services, not two each
            known = self.store.services()  # a new app's have none: no query each
            labels = {name: self._label_at_start(app, name, tree, name in known)
                      for name, unit in sup.units.items() if not unit.external}
            self._close_interrupted(labels)
        for name, label in labels.items():
            sup.units[name].version = Version(label=label)

    def _close_interrupted(self, labels: dict[str, str]) -> None:
        for record in self.store.active():
            phase = record.get("phase", "?")
            now = labels.get(record["service"], "?")
            record["state"] = "interrupted"
            record["ended"] = record.get("ended") or time.time()
            record["reason"] = (
                f"the runtime stopped during {phase}; on the next start the service ran "
                f"{now} (the manifest's entry) with all traffic"
            )
            self.store.save(record)

    def _label_at_start(self, app: AppConfig, name: str, tree: tuple[str | None, bool],
                        known: bool) -> str:
        ident = identify(app, name, tree=tree)
        history = self.store.history(name, limit=200) if known else []
        match = next((r for r in history if ident.same_code(r.get("identity", {}))), None)
        newest = history[0] if history else None
        if match is not None and newest is match and match["state"] in ("succeeded", "started"):
            return str(match["version"])
        if match:
            label = str(match["version"])
        else:
            label = self.store.next_version(name) if known else "v1"
        why = (f"lsq up started the manifest's entry, which {label} already was" if match
               else "lsq up started the manifest's entry (first run, or changed since)")
        self.store.add(self._record(name, label, "up", ident, state="started", reason=why))
        return label

    def _record(self, name: str, label: str, strategy: str, ident: Identity, *,
                state: str = "running", reason: str = "") -> dict[str, Any]:
        now = time.time()
        sup = self.runtime.sup
        previous = sup.units[name].version.label if sup is not None else ""
        return {
            "service": name, "version": label, "previous": previous, "strategy": strategy,
            "state": state, "phase": "starting" if state == "running" else "done",
            "reason": reason, "started": now, "ended": None if state == "running" else now,
            "identity": ident.to_json(), "share": 0, "steps": [], "analyses": [],
            "timings": {}, "log": [], "paused": False,
        }

    def _on_event(self, event: dict[str, object]) -> None:
        # The runtime announces its shut-down; a release cannot go on.
        if event.get("kind") == "runtime" and event.get("message") == "stopping services":
            for release in self.releases.values():
                if release.task is not None and not release.task.done():
                    release.task.cancel()

    # -- what the API calls ---------------------------------------------------

    def begin(self, name: str, options: dict[str, Any]) -> dict[str, Any]:
        sup = self.runtime.sup
        assert sup is not None
        current = self.releases.get(name)
        if current is not None and current.record["state"] in ACTIVE_STATES:
            raise LsqError(
                f"a release of {name} ({current.record['version']}) is in progress; "
                f"follow it with `lsq deploy {name} --follow`, or end it with "
                f"`lsq promote {name}` / `lsq rollback {name}`"
            )
        if not sup.units[name].wanted or not sup.units[name].replicas:
            raise LsqError(f"service {name!r} is not running; start it with `lsq start {name}`")
        from lsq.manifest import load  # the YAML parser only once a release needs it

        app = load(self.runtime.app.path).frozen()  # as the runtime's own app is
        if name not in app.services or app.services[name].external is not None:
            raise UsageError(f"{app.path.name} has no service {name!r} that LSQ runs")
        settings = _settings(app, name, options)
        label = self.store.next_version(name)
        ref = options.get("ref") or None
        folder = checkout(app, name, ref, label) if ref else None
        ident = identify(app, name, folder=folder, ref=ref)
        record = self._record(name, label, settings.strategy, ident)
        record["steps"] = list(settings.steps) if settings.strategy == "canary" else [100]
        record["step_time"] = settings.step_time
        self.store.add(record)
        version = Version(label=label, service=app.services[name],
                          env=app.env.get(name, {}), cwd=folder, tagged=True)
        release = Release(record, settings)
        release.paused = bool(options.get("pause"))
        self.releases[name] = release
        release.task = asyncio.get_running_loop().create_task(
            self._run(release, version), name=f"release {name} {label}"
        )
        self.runtime.event("deploy", f"release {label} started ({settings.strategy})", name)
        return record

    def control(self, name: str, command: str) -> dict[str, Any]:
        release = self.releases.get(name)
        if release is None or release.record["state"] not in ACTIVE_STATES:
            last = self.last(name)
            where = f"; the last one, {last['version']}, {last['state']}" if last else ""
            raise LsqError(f"no release of {name} is in progress{where}")
        if command in ("pause", "resume"):
            release.paused = command == "pause"
            release.record["paused"] = release.paused
            release.note("paused" if release.paused else "resumed")
        else:
            release.command = command
            release.note(f"{command} asked")
        release.wake.set()
        return release.record

    def last(self, name: str) -> dict[str, Any] | None:
        release = self.releases.get(name)
        if release is not None:
            return release.record
        history = [r for r in self.store.history(name, limit=20) if r["strategy"] != "up"]
        return history[0] if history else None

    # -- the release ----------------------------------------------------------

    async def _run(self, release: Release, version: Version) -> None:
        record = release.record
        try:
            await self._start_new(release, version)
            await self._smoke(release)
            if release.settings.strategy == "blue-green":
                await self._blue_green(release)
            else:
                await self._canary(release)
        except Abort as exc:
            await self._roll_back(release, exc)
        except asyncio.CancelledError:
            self._finish(release, "interrupted",
                         f"the runtime stopped during {record['phase']}; the next start "
                         "runs the manifest's entry with all traffic")
            raise
        except Exception as exc:  # a bug must not leave two versions serving
            await self._roll_back(release, Abort(f"internal error: {exc!r}", state="aborted"))
        finally:
            if record["state"] not in ("succeeded", "warm") and version.cwd is not None:
                await asyncio.to_thread(remove_checkout, self.runtime.app, release.service,
                                        str(record["version"]))

    def _phase(self, release: Release, phase: str) -> None:
        release.record["phase"] = phase
        release.note(phase)
        self.store.save(release.record)
        self.runtime.event("deploy", f"{release.record['version']}: {phase}", release.service)

    async def _start_new(self, release: Release, version: Version) -> None:
        sup = self.runtime.sup
        assert sup is not None
        name = release.service
        count = len(sup.units[name].replicas)
        self._phase(release, f"starting {count} replica(s) of {version.label}")
        new = sup.start_candidates(name, version, count)
        timeout = release.settings.ready_timeout
        await sup.wait_until(lambda: _all_healthy(new) or bool(_broken(new)) or
                             release.command == "rollback", timeout)
        release.check()
        if not _all_healthy(new):
            problem = _broken(new) or "; ".join(
                f"{r.id} {r.instance.state.value}: {r.instance.reason or 'no detail'}" for r in new
            )
            raise Abort(f"{version.label} was not healthy within {timeout:g}s ({problem})",
                        state="aborted")
        release.mark("healthy")

    async def _smoke(self, release: Release) -> None:
        smoke = release.settings.smoke
        if not smoke:
            return
        self._phase(release, f"smoke: {len(smoke)} request(s) per new replica")
        sup = self.runtime.sup
        assert sup is not None
        import httpx  # only a release with smoke requests needs a client

        async with httpx.AsyncClient(timeout=SMOKE_TIMEOUT) as client:
            for replica in sup.units[release.service].candidates:
                for item in smoke:
                    await _smoke_one(client, replica, item.method, item.path, item.status,
                                     item.contains)
        release.mark("smoke")

    async def _blue_green(self, release: Release) -> None:
        await self._share(release, 100)
        release.mark("switched")
        release.record["state"] = "warm"
        warm = release.settings.warm
        self._phase(release, f"all traffic on {release.record['version']}; "
                             f"{release.record['previous']} kept warm for {warm:g}s")
        await release.hold(warm)
        release.check()
        await self._finish_promotion(release)

    async def _canary(self, release: Release) -> None:
        for step in release.settings.steps:
            release.check()
            if release.command == "promote" or step >= 100:
                break
            await self._share(release, step)
            self._phase(release, f"step {step}%")
            await self._judge_step(release, step)
        release.check()
        await self._share(release, 100)
        release.mark("switched")
        await self._finish_promotion(release)

    async def _judge_step(self, release: Release, step: int) -> None:
        rules = release.settings.analysis
        holds = 0
        baseline = await self._replica_stats()
        while True:
            verdict = await self._watch(release, baseline, release.settings.step_time)
            entry = dict(verdict.to_json(), step=step, hold=holds)
            release.record["analyses"].append(entry)
            release.note(f"{step}%: {verdict.reason}")
            self.store.save(release.record)
            release.check()
            if verdict.result == "pass" or release.command == "promote":
                return
            if verdict.result == "fail":
                raise Abort(f"analysis failed at {step}%: {verdict.reason}")
            if holds >= rules.extend:
                if rules.on_inconclusive == "promote":
                    release.note(f"{step}%: still inconclusive; going on (on_inconclusive: promote)")
                    return
                raise Abort(f"analysis at {step}% stayed {verdict.reason} after {holds} "
                            "extra hold(s); rolled back (on_inconclusive: rollback)")
            holds += 1

    async def _watch(self, release: Release, baseline: dict[str, Any], seconds: float) -> Verdict:
        """Judge the step when its time is up, or at once when it clearly fails."""
        deadline = time.monotonic() + seconds
        while True:
            await release.hold(min(0.5, max(0.0, deadline - time.monotonic())))
            verdict = await self._verdict(release, baseline)
            if verdict.result == "fail" or release.command:
                return verdict
            if time.monotonic() >= deadline and not release.paused:
                return verdict
            if release.paused:
                deadline = max(deadline, time.monotonic() + POLL)

    async def _verdict(self, release: Release, baseline: dict[str, Any]) -> Verdict:
        sup = self.runtime.sup
        assert sup is not None
        unit = sup.units[release.service]
        now = await self._replica_stats()
        new = figures(now, [r.id for r in unit.candidates], baseline)
        old = figures(now, [r.id for r in unit.replicas], baseline)
        labels = (str(release.record["version"]), str(release.record["previous"]))
        verdict = judge(new, old, release.settings.analysis, labels=labels)
        if verdict.result == "fail":
            release.record["timings"]["failed_analysis_at"] = round(time.time(), 3)
        return verdict

    async def _replica_stats(self) -> dict[str, Any]:
        gateway = self.runtime.gateway
        if gateway is None:
            return {}
        stats = await gateway.stats()
        return dict(stats.get("replicas", {}))

    async def _share(self, release: Release, percent: int) -> None:
        """Give the new version `percent` of the traffic, the old the rest,
        and return once every gateway worker uses the new weights."""
        sup = self.runtime.sup
        assert sup is not None
        unit = sup.units[release.service]
        _weigh(sup, unit.candidates, percent)
        _weigh(sup, unit.replicas, 100 - percent)
        if self.runtime.feed is not None:
            await self.runtime.feed.push_applied()
        release.record["share"] = percent
        release.note(f"traffic: {percent}% {release.record['version']}, "
                     f"{100 - percent}% {release.record['previous']}")

    async def _finish_promotion(self, release: Release) -> None:
        sup = self.runtime.sup
        assert sup is not None
        name = release.service
        release.record["state"] = "running"  # no rollback once the old one drains
        old = sup.promote(name)
        for replica in sup.units[name].replicas:
            replica.instance.weight = 100
            sup.publish(replica.instance)
        self._phase(release, f"draining and stopping {len(old)} replica(s) of "
                             f"{release.record['previous']}")
        await sup.stop_candidates(name)
        release.mark("done")
        self._finish(release, "succeeded", f"{release.record['version']} has all traffic")

    async def _roll_back(self, release: Release, abort: Abort) -> None:
        sup = self.runtime.sup
        assert sup is not None
        release.note(abort.reason)
        await self._share(release, 0)
        release.mark("back_on_old")
        failed_at = release.record["timings"].pop("failed_analysis_at", None)
        if failed_at is not None:
            release.record["timings"]["analysis_to_old"] = round(time.time() - failed_at, 3)
        self._phase(release, f"stopping {release.record['version']}")
        await sup.stop_candidates(release.service)
        for replica in sup.units[release.service].replicas:
            replica.instance.weight = 100
            sup.publish(replica.instance)
        release.mark("done")
        self._finish(release, abort.state, abort.reason)

    def _finish(self, release: Release, state: str, reason: str) -> None:
        record = release.record
        record["state"], record["reason"], record["ended"] = state, reason, time.time()
        record["phase"] = "done"
        release.note(f"{state}: {reason}")
        self.store.save(record)
        self.runtime.event("deploy", f"release {record['version']} {state}: {reason}",
                           release.service)


def _settings(app: AppConfig, name: str, options: dict[str, Any]) -> ReleaseSettings:
    # The schema, only once a release is asked for: the runtime reads its app
    # frozen (lsq.manifest._frozen) and starts without pydantic.
    from pydantic import ValidationError

    from lsq.manifest._frozen import plain
    from lsq.manifest._schema import Release as ReleaseSettings

    base = app.services[name].release
    changes = {k: options[k] for k in ("strategy", "steps", "step_time") if options.get(k)}
    try:
        return ReleaseSettings.model_validate({**(plain(base) if base else {}), **changes})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "release"
        message = str(first["msg"]).removeprefix("Value error, ")
        if "found" not in message:  # a validator of ours names what it found itself
            message += f", found {first.get('input')!r}"
        raise UsageError(f"deploy {name}: {where}: {message}") from None


def _all_healthy(replicas: list[Replica]) -> bool:
    return all(r.instance.state is State.RUNNING and r.instance.healthy for r in replicas)


def _broken(replicas: list[Replica]) -> str:
    for replica in replicas:
        inst = replica.instance
        if inst.state in (State.FAILED, State.EXITED):
            return f"{replica.id} {inst.state.value}: {inst.reason}"
        if inst.restarts >= CRASHES_BEFORE_ABORT:
            return f"{replica.id} crashed {inst.restarts} times: {inst.reason}"
    return ""


def _weigh(sup: Any, replicas: list[Replica], percent: int) -> None:
    # Weights are relative, so each side's total is split over its replicas;
    # the scale keeps a 1% share above zero with many replicas.
    each = (percent * 100) // max(1, len(replicas))
    for replica in replicas:
        replica.instance.weight = max(1, each) if percent > 0 else 0
        sup.publish(replica.instance)


async def _smoke_one(client: httpx.AsyncClient, replica: Replica, method: str, path: str,
                     status: int, contains: str | None) -> None:
    inst = replica.instance
    url = f"http://{inst.host}:{inst.port}{path}"
    try:
        resp = await client.request(method, url)
    except httpx.HTTPError as exc:
        raise Abort(f"smoke {method} {path} to {replica.id} failed: {exc!r}",
                    state="aborted") from exc
    if resp.status_code != status:
        raise Abort(f"smoke {method} {path} to {replica.id} answered {resp.status_code}, "
                    f"expected {status}", state="aborted")
    if contains is not None and contains not in resp.text:
        raise Abort(f"smoke {method} {path} to {replica.id}: body lacks {contains!r}",
                    state="aborted")
