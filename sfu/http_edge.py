"""What every HTTP request passes before it reaches a route (Socket.IO's included).

The client's address (through trusted reverse proxies only), the Host allow-list against DNS
rebinding, and the Origin check for state-changing calls live here, once, for the REST API,
the recording routes and the Socket.IO handshake alike.
"""

from __future__ import annotations

import ipaddress

from aiohttp import web

from sfu.settings import Settings


def _in(address: str, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for net in networks:
        try:
            if ip in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


def client_address(request: web.BaseRequest, settings: Settings) -> str:
    """The client's IP address: the TCP peer, or what a trusted proxy says it forwarded for.

    X-Forwarded-For is read right to left, skipping trusted proxies, so a client cannot put
    an address of its choice in front of the proxy's own entry.
    """
    peer = request.remote or "?"
    proxies = settings.server.trusted_proxies
    if not proxies or not _in(peer, proxies):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _in(hop, proxies):
            return hop
    return peer
