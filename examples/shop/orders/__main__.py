"""Orders: the service that ties the shop together.

    POST /orders       {"product_id", "qty", "email"} -> 201 with the order
    GET  /orders       every order
    GET  /orders/{id}  one order

Placing an order: reserve stock at catalog, charge at payments, record the
order, then tell notifications. If the charge fails the reservation is
released, so a declined card (402) leaves the stock as it was. Notifications
are best-effort: when that service is down the order still succeeds, the
failure is logged and the order says `"notified": false`.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

from common.web import (
    JSON,
    App,
    HTTPError,
    Request,
    call_json,
    log,
    required_env,
    serve,
    utc_now,
)
from orders.store import Store

CATALOG = required_env("LSQ_CATALOG_URL").rstrip("/")
PAYMENTS = required_env("LSQ_PAYMENTS_URL").rstrip("/")
NOTIFICATIONS = required_env("LSQ_NOTIFICATIONS_URL").rstrip("/")


def open_store() -> Store:
    try:
        return Store(required_env("DATABASE_URL"))
    except ImportError:
        log(
            "error",
            "DATABASE_URL is PostgreSQL but psycopg is not installed; "
            "install it with: pip install 'psycopg[binary]'",
        )
        sys.exit(2)


store = open_store()
app = App(health=store.ping)


def validate(body: dict[str, Any]) -> tuple[int, int, str]:
    product_id, qty, email = body.get("product_id"), body.get("qty"), body.get("email")
    problems = []
    if not isinstance(product_id, int) or isinstance(product_id, bool):
        problems.append(f"product_id must be an integer, found {product_id!r}")
    if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
        problems.append(f"qty must be a whole number of 1 or more, found {qty!r}")
    if not isinstance(email, str) or "@" not in email or " " in email:
        problems.append(f"email must be an address like a@b.example, found {email!r}")
    if problems:
        raise HTTPError(422, "; ".join(problems))
    return product_id, qty, email  # type: ignore[return-value]


def call(name: str, method: str, url: str, body: JSON) -> tuple[int, JSON]:
    """Call another service; an unreachable one is a 503 for our caller."""
    try:
        return call_json(method, url, body)
    except TimeoutError as exc:
        log("error", f"{name} did not answer in time", url=url, error=str(exc))
        raise HTTPError(504, f"{name} did not answer in time") from exc
    except OSError as exc:
        log("error", f"{name} is unreachable", url=url, error=str(exc))
        raise HTTPError(503, f"{name} is unavailable, try again shortly") from exc


def reserve(product_id: int, qty: int) -> dict[str, Any]:
    url = f"{CATALOG}/products/{product_id}/reserve"
    status, body = call("catalog", "POST", url, {"qty": qty})
    if status != 200:
        raise HTTPError(
            status if status in (404, 409, 422) else 502,
            body.get("error", f"catalog answered {status}"),
        )
    return body


def release(product_id: int, qty: int) -> None:
    url = f"{CATALOG}/products/{product_id}/release"
    try:
        status, _ = call_json("POST", url, {"qty": qty})
    except OSError as exc:
        status = 0
        log("error", "could not release stock", error=str(exc))
    if status != 200:
        log("error", "stock not released", product_id=product_id, qty=qty)


def charge(order_id: str, amount_cents: int) -> dict[str, Any]:
    body = {"amount_cents": amount_cents, "ref": order_id}
    status, answer = call("payments", "POST", f"{PAYMENTS}/charges", body)
    if status == 402:
        raise HTTPError(
            402,
            f"payment declined: {answer.get('error', 'no reason')}",
            stock_released=True,
        )
    if status not in (200, 201):
        raise HTTPError(502, f"payments answered {status}", stock_released=True)
    return answer


def notify(order: dict[str, Any]) -> bool:
    text = f"Thanks! Order {order['id']} for {order['qty']} item(s) is paid."
    body = {"order_id": order["id"], "email": order["email"], "text": text}
    try:
        status, _ = call_json("POST", f"{NOTIFICATIONS}/notify", body, timeout=2.0)
    except OSError as exc:
        status = 0
        log("warning", "notification not sent", order_id=order["id"], error=str(exc))
    if status not in (0, 200, 201):
        log("warning", "notification refused", order_id=order["id"], status=status)
    return status in (200, 201)


@app.route("POST", "/orders")
def place_order(request: Request) -> tuple[int, Any]:
    product_id, qty, email = validate(request.json())
    order_id = "ord_" + uuid.uuid4().hex[:12]
    product = reserve(product_id, qty)
    try:
        payment = charge(order_id, product["price_cents"] * qty)
        order = {
            "id": order_id,
            "product_id": product_id,
            "qty": qty,
            "email": email,
            "amount_cents": product["price_cents"] * qty,
            "payment_id": payment["id"],
            "status": "paid",
            "created_at": utc_now(),
        }
        store.insert(order)
    except BaseException:
        # Put the stock back whatever went wrong after the reservation.
        release(product_id, qty)
        raise
    log("info", "order placed", order_id=order_id, amount_cents=order["amount_cents"])
    return 201, {**order, "notified": notify(order)}


@app.route("GET", "/orders")
def list_orders(request: Request) -> tuple[int, Any]:
    return 200, store.all()


@app.route("GET", r"/orders/([A-Za-z0-9_-]+)")
def get_order(request: Request) -> tuple[int, Any]:
    order = store.get(request.params[0])
    if order is None:
        raise HTTPError(404, f"no order with id {request.params[0]}")
    return 200, order


if __name__ == "__main__":
    store.create_schema()
    log("info", "orders store ready", kind=store.kind)
    serve(app)
