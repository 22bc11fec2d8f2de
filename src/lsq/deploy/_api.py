"""The release routes of the control API.

    POST /v1/deploy/{name}            start a release; body: strategy, steps,
                                      step_time, ref, pause (all optional)
    GET  /v1/deploy/{name}            the release in progress, else the last one
    POST /v1/deploy/{name}/pause      hold the current step (a failing
                                      analysis still rolls back)
    POST /v1/deploy/{name}/resume
    POST /v1/deploy/{name}/promote    skip to 100% on the new version
    POST /v1/deploy/{name}/rollback   all traffic back on the old version
    GET  /v1/deploy/{name}/history    releases, newest first
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from lsq.deploy._controller import ReleaseController
from lsq.errors import LsqError, UsageError

if TYPE_CHECKING:
    from lsq.control._http import Request, Response
    from lsq.runtime import Runtime

Handler = Callable[["Request"], Awaitable["Response"]]


def mount(api: Any, runtime: Runtime) -> ReleaseController:
    """Add the release routes; label the versions the services start with."""
    from lsq.control._http import Response

    deploy = ReleaseController(runtime)
    deploy.recover()
    runtime.deploy = deploy  # type: ignore[attr-defined]

    def service(request: Request) -> str:
        name = request.params["name"]
        sup = runtime.sup
        if sup is None or name not in sup.units:
            raise UsageError(f"no service {name!r}")
        if sup.units[name].external:
            raise UsageError(f"service {name!r} is external; LSQ does not run it")
        return name

    async def begin(request: Request) -> Response:
        try:
            body = request.json() or {}
        except ValueError:
            return Response.error(400, "expected a JSON object of release options")
        if not isinstance(body, dict):
            return Response.error(400, "expected a JSON object of release options")
        return Response.json(deploy.begin(service(request), body), 202)

    async def show(request: Request) -> Response:
        name = service(request)
        record = deploy.last(name)
        if record is None:
            return Response.error(404, f"{name} has had no release yet; start one with "
                                       f"`lsq deploy {name}`")
        return Response.json(record)

    async def history(request: Request) -> Response:
        return Response.json(deploy.store.history(service(request)))

    def command(verb: str) -> Handler:
        async def handler(request: Request) -> Response:
            return Response.json(deploy.control(service(request), verb))

        return handler

    r = api.router
    r.add("POST", "/v1/deploy/{name}", _usage_400(begin))
    r.add("GET", "/v1/deploy/{name}", _usage_400(show))
    r.add("GET", "/v1/deploy/{name}/history", _usage_400(history))
    for verb in ("pause", "resume", "promote", "rollback"):
        r.add("POST", f"/v1/deploy/{{name}}/{verb}", _usage_400(command(verb)))
    return deploy


def _usage_400(handler: Handler) -> Handler:
    from lsq.control._http import Response

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except UsageError as exc:
            return Response.error(400, str(exc))
        except LsqError as exc:
            return Response.error(409, str(exc))

    return wrapped
