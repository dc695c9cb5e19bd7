"""TURN credentials: coturn's shared-secret scheme, and the ICE server lists built with them.

With ``use-auth-secret`` and ``static-auth-secret=SECRET``, coturn accepts any username
``<expiry unix time>:<id>`` whose password is base64(HMAC-SHA1(SECRET, username)) until that
time (the "TURN REST API" draft, draft-uberti-behave-turn-rest). The server mints one per
participant (and one for the SFU's own candidates) from ``ice.turn_secret``: no long-lived
TURN password reaches a browser, and a leaked one stops working by itself.

Entries of ``ice.servers`` that are ``turn:``/``turns:`` without a username get minted
credentials; entries with a static username and credential are handed as they are; settings
validation refuses a ``turn:`` entry without a username when no secret is set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

from ..settings import IceServer, IceSettings

# The identity in the SFU's own TURN usernames (``<expiry>:sfu`` in coturn's log).
SFU_IDENTITY = "sfu"
# Browsers get fresh credentials when this fraction of their lifetime has passed.
RENEW_FRACTION = 0.8


@dataclass(frozen=True)
class TurnCredential:
    username: str
    credential: str
    expires: int  # unix time


def mint(
    secret: str, identity: str, ttl_seconds: float, now: float | None = None
) -> TurnCredential:
    """coturn's REST credential for ``identity``, valid ``ttl_seconds`` from ``now``."""
    expires = int((time.time() if now is None else now) + ttl_seconds)
    username = f"{expires}:{identity}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredential(username, base64.b64encode(digest).decode("ascii"), expires)


@dataclass(frozen=True)
class ResolvedIceServer:
    """One ICE server with the credentials to use now (minted or static)."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None
    expires: int | None = None  # set when minted

    def as_json(self) -> dict[str, Any]:
        """The browser's ``RTCIceServer`` dictionary."""
        out: dict[str, Any] = {"urls": list(self.urls)}
        if self.username is not None:
            out["username"] = self.username
            out["credential"] = self.credential
        return out


def resolve(
    servers: list[IceServer], ice: IceSettings, identity: str, now: float | None = None
) -> list[ResolvedIceServer]:
    """``servers`` with credentials: minted for ``identity`` where needed, static otherwise."""
    secret = ice.turn_secret.get_secret_value() if ice.turn_secret is not None else ""
    out = []
    for server in servers:
        if server.needs_minting and secret:
            minted = mint(secret, identity, ice.turn_ttl_seconds, now)
            out.append(
                ResolvedIceServer(
                    list(server.urls), minted.username, minted.credential, minted.expires
                )
            )
        elif server.username is not None and server.credential is not None:
            out.append(
                ResolvedIceServer(
                    list(server.urls), server.username, server.credential.get_secret_value()
                )
            )
        elif not server.needs_minting:
            out.append(ResolvedIceServer(list(server.urls)))
        # (a turn: entry without credentials and without a secret is refused by the settings)
    return out


def participant_ice_servers(
    ice: IceSettings, user_id: str, now: float | None = None
) -> tuple[list[dict[str, Any]], int | None]:
    """A joined participant's ``iceServers`` and when its minted credentials expire (None:
    nothing minted, nothing to renew)."""
    servers = resolve(ice.servers, ice, user_id, now)
    expiries = [s.expires for s in servers if s.expires is not None]
    return [s.as_json() for s in servers], min(expiries, default=None)


def public_ice_servers(ice: IceSettings) -> list[dict[str, Any]]:
    """What an unauthenticated caller may know: the STUN URLs, never a TURN server or any
    credential (those come only in the join answer)."""
    out = []
    for server in ice.servers:
        stun = [u for u in server.urls if u.startswith("stun:")]
        if stun:
            out.append({"urls": stun})
    return out


def sfu_ice_servers(ice: IceSettings, now: float | None = None) -> list[ResolvedIceServer]:
    """The SFU's own ICE servers: ``ice.sfu_servers``, or ``ice.servers`` when unset."""
    servers = ice.servers if ice.sfu_servers is None else ice.sfu_servers
    return resolve(servers, ice, SFU_IDENTITY, now)


def renewal_delay(ice: IceSettings) -> float:
    """Seconds after minting when a participant gets fresh credentials."""
    return ice.turn_ttl_seconds * RENEW_FRACTION
