"""What every HTTP request passes before it reaches a route (Socket.IO's included).

The client's address (through trusted reverse proxies only), the Host allow-list against DNS
rebinding, and the Origin check for state-changing calls live here, once, for the REST API,
the recording routes and the Socket.IO handshake alike.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from sfu.refusal import Refusal
from sfu.server.http_errors import ApiError, error
from sfu.settings import Settings

log = logging.getLogger("sfu.http")


def is_admin(request: web.BaseRequest, settings: Settings) -> bool:
    """True when the request carries the admin token (compared in constant time)."""
    token = settings.auth.admin_token
    header = request.headers.get("Authorization", "")
    if token is None or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[7:].encode(), token.get_secret_value().encode())


def require_admin(request: web.BaseRequest, settings: Settings) -> None:
    """Refuses (401 ``unauthorized``) a request without the admin token."""
    if not is_admin(request, settings):
        raise error("unauthorized", "admin token required")


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


# -- Host: the names this server answers to (DNS rebinding) ------------------------------------
# A DNS-rebinding page reaches the server under the attacker's own name, so its requests carry
# that name in Host: a Host allow-list stops them, the Socket.IO handshake included.
_LOOPBACK = ("localhost", "*.localhost", "127.0.0.1", "[::1]")
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})
_NAME = re.compile(r"[a-z0-9_.:-]+")
_PORT = re.compile(r"[0-9]{1,5}")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def split_host(value: str) -> tuple[str, int | None] | None:
    """``"Name:port"`` as ``("name", port)``, IPv6 without brackets; None when malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:] if rest else None
    elif value.count(":") > 1:  # a bare IPv6 address (as in server.host): no port
        name, port = value, None
    else:
        name, colon, port = value.partition(":")
        port = port if colon else None
    name = name.rstrip(".")
    if not _NAME.fullmatch(name) or (port is not None and not _PORT.fullmatch(port)):
        return None
    if port is not None and not 0 < int(port) < 65536:
        return None
    return name, int(port) if port is not None else None


def listens_on_every_address(settings: Settings) -> bool:
    return settings.server.host.strip() in _WILDCARD_HOSTS


def host_patterns(settings: Settings) -> list[str] | None:
    """The accepted Host patterns (``name``, ``name:port``, ``*.suffix``); None: any host."""
    s = settings.server
    if "*" in s.allowed_hosts:
        return None
    if s.allowed_hosts:
        return [*_LOOPBACK, *s.allowed_hosts]
    if listens_on_every_address(settings):
        return None
    # A cors_origins entry's port is the browser's, not necessarily this server's: name only.
    names = [o[1] for o in map(_parse_origin, s.cors_origins) if o is not None]
    return [*_LOOPBACK, s.host, *(f"[{n}]" if ":" in n else n for n in names)]


def _matches(host: tuple[str, int | None], pattern: str) -> bool:
    pattern = pattern.strip().lower()
    suffix = pattern.startswith("*.")
    wanted = split_host(pattern[2:] if suffix else pattern)
    if wanted is None:
        return False
    name, port = wanted
    if port is not None and port != host[1]:
        return False  # a pattern without a port accepts the name on any port
    return host[0].endswith("." + name) if suffix else host[0] == name


def host_allowed(host: str | None, settings: Settings) -> bool:
    """True when the server answers to this Host header (None: no header, nothing to rebind)."""
    patterns = host_patterns(settings)
    if patterns is None or host is None:
        return True
    parsed = split_host(host)
    return parsed is not None and any(_matches(parsed, p) for p in patterns)


def host_warning(settings: Settings) -> str | None:
    """The start-up warning for a server that answers to any Host header by default."""
    if settings.server.allowed_hosts or not listens_on_every_address(settings):
        return None
    return (
        f"server.host is {settings.server.host!r} (every address) and server.allowed_hosts is "
        "empty, so any Host header is accepted and DNS rebinding is possible: set "
        "server.allowed_hosts to the names this server is reached by"
    )


# -- Origin: same origin or server.cors_origins -----------------------------------------------
def _origin(scheme: str, netloc: str) -> tuple[str, str, int | None] | None:
    host = split_host(netloc)
    if host is None or not scheme:
        return None
    scheme = scheme.lower()
    return scheme, host[0], host[1] if host[1] is not None else _DEFAULT_PORTS.get(scheme)


def _parse_origin(origin: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        return None
    return _origin(parts.scheme, parts.netloc)


def origin_allowed(origin: str | None, host: str, scheme: str, settings: Settings) -> bool:
    """True for no Origin (curl, the CLI), the server's own origin and ``server.cors_origins``.

    ``host`` is the request's Host header and ``scheme`` the one the client used (see
    :func:`request_scheme`); default ports count as written or not.
    """
    if origin is None:
        return True
    allowed = settings.server.cors_origins
    if origin in allowed:
        return True
    parsed = _parse_origin(origin)
    if parsed is None:
        return False  # "null" (sandboxed frames, file://) and anything malformed
    if parsed == _origin(scheme, host):
        return True
    return any(parsed == _parse_origin(o) for o in allowed)


def request_scheme(request: web.BaseRequest, settings: Settings) -> str:
    """``http`` or ``https`` as the client sees it: a trusted proxy's X-Forwarded-Proto wins."""
    peer = request.remote or ""
    forwarded = request.headers.get("X-Forwarded-Proto", "")
    if forwarded and _in(peer, settings.server.trusted_proxies):
        first = forwarded.split(",")[0].strip().lower()
        if first in ("http", "https"):
            return first
    return request.scheme


# -- the middleware ---------------------------------------------------------------------------
_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
# aiohttp's own refusals (no route, wrong method, body too big) as REST error codes: every
# answer but Socket.IO's has the one error shape, the web app's paths' too.
_AIOHTTP_CODES = {
    400: ("invalid_payload", "the request is malformed"),
    401: ("unauthorized", "credentials required"),
    403: ("forbidden", "not allowed"),
    404: ("not_found", "no such route"),
    405: ("method_not_allowed", "this route does not take this method"),
    413: ("payload_too_large", "the body is too large"),
    415: ("unsupported_media_type", "send JSON"),
}


def _socket_io(path: str) -> bool:
    return path == "/socket.io" or path.startswith("/socket.io/")


def _shown(text: str) -> str:
    return text if len(text) <= 80 else text[:80] + "..."


def edge_middleware(settings: Settings) -> Middleware:
    """Host allow-list for every request; Origin and JSON for REST calls that change state;
    REST errors in the one shape (aiohttp's own refusals and unexpected failures too)."""

    @web.middleware
    async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        hosts = request.headers.getall("Host", [])
        host = hosts[0] if hosts else None
        if len(hosts) > 1 or not host_allowed(host, settings):
            raise error(
                "invalid_host",
                f"this server does not answer to the host {_shown(host or '')!r}; "
                "add it to server.allowed_hosts",
            )
        if _socket_io(request.path):
            # Engine.IO polls with text/plain posts; signaling checks the Origin itself.
            return await handler(request)
        if request.method in _STATE_CHANGING:
            origins = request.headers.getall("Origin", [])
            scheme = request_scheme(request, settings)
            if len(origins) > 1 or not origin_allowed(
                origins[0] if origins else None, host or "", scheme, settings
            ):
                raise error(
                    "forbidden_origin",
                    f"requests from the origin {_shown(origins[0])!r} may not change anything "
                    "here; list it in server.cors_origins if it is yours",
                )
        if (
            request.method in _WITH_BODY
            and request.body_exists
            and request.content_type != "application/json"
        ):
            raise error(
                "unsupported_media_type", "send the body as JSON (Content-Type: application/json)"
            )
        try:
            return await handler(request)
        except ApiError:
            raise
        except Refusal as exc:  # a layer's refusal: the REST shape, its code's status
            raise error(exc.code, exc.message) from None
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code, message = _AIOHTTP_CODES.get(exc.status, ("invalid_payload", exc.reason))
            headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            raise error(code, message, exc.status, headers) from None
        except Exception:
            log.exception("%s %s failed", request.method, _shown(request.path))
            raise error("internal_error", "the server failed; the error is logged") from None

    return edge
