"""The documented mapping from a service's name to its address variable,
without the schema: the runtime's warm start makes service environments
before it has loaded pydantic."""

from __future__ import annotations

import re

_NOT_ALNUM = re.compile(r"[^A-Z0-9]")


def env_name(service: str) -> str:
    """Upper-case, every character that is not a letter or digit becomes `_`:
    `user-api` and `billing.v2` give `LSQ_USER_API_URL`, `LSQ_BILLING_V2_URL`.
    """
    return "LSQ_" + _NOT_ALNUM.sub("_", service.upper()) + "_URL"
