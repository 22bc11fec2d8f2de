"""The chaos routes of the control API.

    POST /v1/chaos               a fault (flat JSON, see `lsq.chaos._model`) -> 201 the fault
    GET  /v1/chaos               the active faults
    POST /v1/chaos/{id}/remove   end one fault
    POST /v1/chaos/clear         end every fault
    GET  /v1/chaos/stats         the gateway's counters per service (for scenarios)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from lsq.chaos._controller import ChaosController
from lsq.errors import UsageError

if TYPE_CHECKING:
    from lsq.control._http import Request, Response
    from lsq.runtime import Runtime


def controller_of(runtime: Runtime) -> ChaosController:
    """The runtime's controller, created on first use if the runtime has none."""
    chaos = getattr(runtime, "chaos", None)
    if chaos is None:
        chaos = ChaosController(runtime)
        runtime.chaos = chaos  # type: ignore[attr-defined]
    return chaos  # type: ignore[no-any-return]


def mount(api: Any, runtime: Runtime) -> None:
    """Add the chaos routes to the control API's router."""
    from lsq.control._http import Response

    chaos = controller_of(runtime)

    async def add(request: Request) -> Response:
        try:
            spec = request.json()
        except ValueError:
            return Response.error(400, "expected a JSON object describing one fault")
        fault = await chaos.add(spec)  # type: ignore[arg-type]
        return Response.json(fault.to_json(), 201)

    async def listing(request: Request) -> Response:
        return Response.json(chaos.list())

    async def remove(request: Request) -> Response:
        fault = await chaos.remove(request.params["id"])
        return Response.json(fault.to_json())

    async def clear(request: Request) -> Response:
        return Response.json([f.to_json() for f in await chaos.clear()])

    async def stats(request: Request) -> Response:
        if runtime.gateway is None:
            return Response.error(409, "the gateway is not running; chaos stats need it")
        data = await runtime.gateway.stats()
        return Response.json({"services": data.get("services", {})})

    r = api.router
    r.add("POST", "/v1/chaos", _usage_400(add))
    r.add("GET", "/v1/chaos", listing)
    r.add("POST", "/v1/chaos/clear", clear)
    r.add("GET", "/v1/chaos/stats", stats)
    r.add("POST", "/v1/chaos/{id}/remove", _usage_400(remove))


def _usage_400(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    # A fault that cannot apply is the caller's mistake: 400, not the API's 409.
    from lsq.control._http import Response

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except UsageError as exc:
            return Response.error(400, str(exc))

    return wrapped
