"""The HTTP API: one example resource, `items`, plus health and metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from app import settings
from app.db import Database
from app.observability import (
    ERRORS,
    LATENCY,
    REQUESTS,
    current_trace,
    setup_logging,
    trace_from_header,
)

log = logging.getLogger("app")
db = Database(settings.DATABASE_URL)
_FAVICON = Path(__file__).resolve().parent.parent / "static" / "favicon.png"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    setup_logging()
    db.connect()
    applied = db.migrate()
    if settings.OTLP_ENDPOINT:
        from app import otel  # imported only when export is asked for

        otel.start(settings.OTLP_ENDPOINT)
    log.info(
        "started", extra={"fields": {"migrations": applied, "port": settings.PORT}}
    )
    yield
    db.close()
    log.info("stopped")


app = FastAPI(title=settings.SERVICE, version="1.0.0", lifespan=lifespan)


@app.middleware("http")
async def observe(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    trace = trace_from_header(request.headers.get("traceparent"))
    token = current_trace.set(trace)
    start, start_ns = time.perf_counter(), time.time_ns()
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
        return response
    finally:
        _record(request, trace, status, time.perf_counter() - start, start_ns)
        current_trace.reset(token)


def _record(
    request: Request, trace: object, status: int, elapsed: float, start_ns: int
) -> None:
    route = getattr(request.scope.get("route"), "path", "unmatched")
    method = request.method
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(elapsed)
    if status >= 500:
        ERRORS.labels(method, route).inc()
    fields = {
        "method": method,
        "path": request.url.path,
        "status": status,
        "duration_ms": round(elapsed * 1000, 2),
    }
    # Health probes come every second: keep them out of the normal log.
    level = logging.DEBUG if route.startswith("/health") else logging.INFO
    log.log(level, "request", extra={"fields": fields})
    if settings.OTLP_ENDPOINT:
        from app import otel

        t = current_trace.get()
        if t is not None:
            otel.record_span(
                trace_id=t.trace_id,
                span_id=t.span_id,
                parent_id=t.parent_id,
                name=f"{method} {route}",
                start_ns=start_ns,
                end_ns=time.time_ns(),
                status=status,
            )


class ItemIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class Item(ItemIn):
    id: int


@app.get("/health/live")
def live() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/health/ready")
def ready() -> JSONResponse:
    if db.ping():
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "unavailable"}, status_code=503)


@app.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@app.get("/favicon.ico", include_in_schema=False)
def favicon() -> FileResponse:
    return FileResponse(_FAVICON, media_type="image/png")


@app.get("/items", response_model=list[Item])
def list_items() -> list[dict[str, object]]:
    return db.query("SELECT id, name FROM items ORDER BY id")


@app.post("/items", response_model=Item, status_code=201)
def create_item(item: ItemIn) -> dict[str, object]:
    row = db.query(
        "INSERT INTO items (name) VALUES (?) RETURNING id, name", (item.name,)
    )
    log.info("item created", extra={"fields": {"item_id": row[0]["id"]}})
    return row[0]


@app.get("/items/{item_id}", response_model=Item)
def get_item(item_id: int) -> dict[str, object]:
    rows = db.query("SELECT id, name FROM items WHERE id = ?", (item_id,))
    if not rows:
        raise HTTPException(404, f"no item {item_id}")
    return rows[0]


@app.delete("/items/{item_id}", status_code=204)
def delete_item(item_id: int) -> Response:
    rows = db.query("DELETE FROM items WHERE id = ? RETURNING id", (item_id,))
    if not rows:
        raise HTTPException(404, f"no item {item_id}")
    return Response(status_code=204)
