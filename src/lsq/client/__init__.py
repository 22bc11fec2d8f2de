"""`lsq.client`: call other services (and outside APIs) from a Python service.

    from lsq.client import Client, incoming

    orders = Client("orders")               # base URL from LSQ_ORDERS_URL
    with incoming(request.headers):         # pass on the caller's deadline and trace
        orders.get("/orders/42")

Retries follow the gateway's rules (see docs/chaos.md, "Resilience")."""

from lsq.client._client import AsyncClient, Client, service_url
from lsq.client._context import (
    DEADLINE_HEADER,
    context,
    current_deadline,
    current_traceparent,
    incoming,
    new_traceparent,
)
from lsq.client._retry import RetryBudget, RetryPolicy

__all__ = [
    "DEADLINE_HEADER",
    "AsyncClient",
    "Client",
    "RetryBudget",
    "RetryPolicy",
    "context",
    "current_deadline",
    "current_traceparent",
    "incoming",
    "new_traceparent",
    "service_url",
]
