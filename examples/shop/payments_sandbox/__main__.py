"""Payments sandbox: pretends to be an outside card processor.

    POST /charges  {"amount_cents": n, "ref": "..."}
        201 {"id", "status": "succeeded", ...}
        402 {"error", "status": "declined", ...} when the amount is over the
            card limit (SANDBOX_LIMIT_CENTS, 100000 = 1,000.00 by default) or
            the request carries the header `Sandbox-Decline: 1`.
    GET  /charges  every charge made since start (kept in memory only: a
        real processor is not part of the app, so it owns no app data)

The same `ref` twice returns the first charge again (200), as real payment
APIs do with idempotency keys, so a retried order is never charged twice.
"""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any

from common.web import App, HTTPError, Request, log, serve

LIMIT_CENTS = int(os.environ.get("SANDBOX_LIMIT_CENTS", "100000"))
charges: dict[str, dict[str, Any]] = {}
lock = threading.Lock()

app = App(health=lambda: None)


def amount(body: dict[str, Any]) -> int:
    value = body.get("amount_cents")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise HTTPError(
            422, f"amount_cents must be a positive integer, found {value!r}"
        )
    return value


def decline_reason(cents: int, request: Request) -> str | None:
    if cents > LIMIT_CENTS:
        return f"amount {cents} is over the sandbox limit of {LIMIT_CENTS} cents"
    if request.headers.get("sandbox-decline") == "1":
        return "the request asked for a decline (Sandbox-Decline: 1)"
    return None


@app.route("POST", "/charges")
def charge(request: Request) -> tuple[int, Any]:
    body = request.json()
    cents, ref = amount(body), str(body.get("ref") or uuid.uuid4())
    with lock:
        if ref in charges:
            earlier = charges[ref]
            return (200 if earlier["status"] == "succeeded" else 402), earlier
        reason = decline_reason(cents, request)
        declined = reason is not None
        result = {
            "id": "ch_" + uuid.uuid4().hex[:16],
            "ref": ref,
            "amount_cents": cents,
            "status": "declined" if declined else "succeeded",
        }
        charges[ref] = result
    log("info", "charge", ref=ref, amount_cents=cents, outcome=result["status"])
    if declined:
        raise HTTPError(402, f"card declined: {reason}", **result)
    return 201, result


@app.route("GET", "/charges")
def list_charges(request: Request) -> tuple[int, Any]:
    with lock:
        return 200, list(charges.values())


if __name__ == "__main__":
    serve(app)
