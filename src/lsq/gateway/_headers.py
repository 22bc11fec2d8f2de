"""Header rules: hop-by-hop removal and the X-Forwarded-* trust policy.

From a peer inside `trusted_proxies` the client's X-Forwarded-For chain is
appended to and its X-Forwarded-Proto/-Host are kept; from any other peer
they (and `Forwarded`) are replaced by what the gateway itself saw.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_FORWARDED = frozenset(
    {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded"}
)
# Names the request head builder handles itself, besides hop-by-hop ones.
SPECIAL = HOP_BY_HOP | _FORWARDED | {b"host", b"expect"}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """`trusted_proxies` as networks; a bare address means just that host."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs)


def is_trusted(peer: str, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in net for net in networks)


def connection_tokens(value: bytes) -> set[bytes]:
    """Header names listed in a Connection header (lower-case)."""
    return {t.strip().lower() for t in value.split(b",") if t.strip()}


def forwarded_headers(
    found: dict[bytes, bytes], *, peer: bytes, host: bytes, trusted: bool
) -> list[bytes]:
    """The X-Forwarded-* header lines to send upstream, CRLF-terminated."""
    if trusted:
        chain = found.get(b"x-forwarded-for")
        xff = chain + b", " + peer if chain else peer
        proto = found.get(b"x-forwarded-proto") or b"http"
        xhost = found.get(b"x-forwarded-host") or host
        lines = [
            b"X-Forwarded-For: " + xff + b"\r\n",
            b"X-Forwarded-Proto: " + proto + b"\r\n",
        ]
        if b"forwarded" in found:
            lines.append(b"Forwarded: " + found[b"forwarded"] + b"\r\n")
    else:
        xhost = host
        lines = [b"X-Forwarded-For: " + peer + b"\r\n", b"X-Forwarded-Proto: http\r\n"]
    if xhost:
        lines.append(b"X-Forwarded-Host: " + xhost + b"\r\n")
    return lines


def filter_response(headers: Headers) -> tuple[list[bytes], dict[bytes, bytes]]:
    """Response header lines without hop-by-hop ones, and the removed values."""
    removed: dict[bytes, bytes] = {}
    drop: set[bytes] = set()
    for name, value in headers:
        lower = name.lower()
        if lower == b"connection":
            drop |= connection_tokens(value)
    lines = []
    for name, value in headers:
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in drop:
            removed[lower] = value
            continue
        lines.append(name + b": " + value + b"\r\n")
    return lines, removed
