"""Join tokens: JWTs that operators' applications mint (PyJWT), checked at ``join-room``.

HS256 with ``auth.token_secret`` or, during a rotation, ``auth.token_secret_previous``; ES256
with ``auth.token_public_key``. PyJWT compares HMAC signatures in constant time. ``exp`` is
required, ``nbf`` and ``iat`` honoured, with 10 s of leeway for clocks. Every failure is a
:class:`~sfu.refusal.Refusal`: ``token_expired`` or ``invalid_token`` with what is wrong.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from sfu.access.grants import DEFAULT, KINDS, Grants, from_claim
from sfu.refusal import Refusal
from sfu.settings import AuthSettings

LEEWAY_SECONDS = 10
MAX_TOKEN_LENGTH = 8192
_GRANT_FLAGS = ("join", "subscribe", "chat", "record", "moderate", "createRoom")


@dataclass(frozen=True)
class RoomSettings:
    """What a token with ``createRoom`` says about the room it creates."""

    mode: Literal["p2p", "sfu"] | None = None
    access: Literal["open", "password", "token"] | None = None
    password: str | None = None
    max_participants: int | None = None


@dataclass(frozen=True)
class JoinToken:
    identity: str  # ``sub``: the participant's userId
    name: str | None
    room: str
    grants: Grants
    room_settings: RoomSettings
    expires_at: float
    jti: str | None


def accepts_tokens(auth: AuthSettings) -> bool:
    return auth.token_secret is not None or auth.token_public_key is not None


def _invalid(why: str) -> Refusal:
    return Refusal("invalid_token", f"invalid join token: {why}")


def _keys(auth: AuthSettings, algorithm: str) -> list[Any]:
    if algorithm == "HS256":
        return [
            s.get_secret_value().encode()
            for s in (auth.token_secret, auth.token_secret_previous)
            if s is not None
        ]
    if algorithm == "ES256" and auth.token_public_key:
        return [auth.token_public_key]
    return []


def _decode(token: str, auth: AuthSettings) -> dict[str, Any]:
    if not accepts_tokens(auth):
        raise _invalid("this server accepts no join tokens (auth.token_secret is unset)")
    if len(token) > MAX_TOKEN_LENGTH:
        raise _invalid("too long")
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError:
        raise _invalid("not a JWT") from None
    keys = _keys(auth, str(algorithm))
    if not keys:
        raise _invalid(f"algorithm {str(algorithm)[:20]!r} is not accepted here")
    options: Any = {"require": ["exp", "sub", "room"]}  # PyJWT's Options TypedDict
    for n, key in enumerate(keys):
        try:
            claims = jwt.decode(
                token, key, algorithms=[str(algorithm)], leeway=LEEWAY_SECONDS, options=options
            )
        except jwt.InvalidSignatureError:
            if n + 1 < len(keys):
                continue  # signed with the other secret of a rotation, perhaps
            raise _invalid("wrong signature") from None
        except jwt.ExpiredSignatureError:
            raise Refusal(
                "token_expired", "this join token has expired; ask for a new one"
            ) from None
        except jwt.ImmatureSignatureError:
            raise _invalid("not valid yet (nbf or iat in the future)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _invalid(f"the {exc.claim!r} claim is missing") from None
        except jwt.PyJWTError as exc:
            raise _invalid(str(exc)[:200]) from None
        if not isinstance(claims, dict):
            raise _invalid("the claims are not an object")
        return claims
    raise _invalid("wrong signature")  # pragma: no cover - the loop returns or raises


def _str(claims: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise _invalid(f"{name!r} must be a non-empty string")
    return value


def _grants(claim: Any) -> Grants:
    if claim is None:
        return DEFAULT
    if not isinstance(claim, dict):
        raise _invalid("'grants' must be an object")
    for flag in _GRANT_FLAGS:
        if flag in claim and not isinstance(claim[flag], bool):
            raise _invalid(f"grants.{flag} must be true or false")
    publish = claim.get("publish", True)
    if isinstance(publish, dict):
        if any(k not in KINDS or not isinstance(v, bool) for k, v in publish.items()):
            raise _invalid("grants.publish must be true, false or {audio, video, screen: bool}")
    elif not isinstance(publish, bool):
        raise _invalid("grants.publish must be true, false or {audio, video, screen: bool}")
    return from_claim(claim)


def _room_settings(claim: Any) -> RoomSettings:
    if claim is None:
        return RoomSettings()
    if not isinstance(claim, dict):
        raise _invalid("'roomSettings' must be an object")
    mode, access = claim.get("mode"), claim.get("access")
    password, cap = claim.get("password"), claim.get("maxParticipants")
    if mode not in (None, "p2p", "sfu"):
        raise _invalid("roomSettings.mode must be 'p2p' or 'sfu'")
    if access not in (None, "open", "password", "token"):
        raise _invalid("roomSettings.access must be 'open', 'password' or 'token'")
    if password is not None and (not isinstance(password, str) or not password):
        raise _invalid("roomSettings.password must be a non-empty string")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise _invalid("roomSettings.maxParticipants must be a positive integer")
    return RoomSettings(mode, access, password, cap)


def verify(token: str, auth: AuthSettings, room_id: str) -> JoinToken:
    """The token's claims for a join to ``room_id``; refuses anything else."""
    claims = _decode(token, auth)
    room = _str(claims, "room", required=True)
    if room == "*":
        raise _invalid("'room' must name one room")
    if room != room_id:
        raise _invalid("this token is for another room")
    identity = _str(claims, "sub", required=True)
    assert identity is not None and room is not None
    exp = claims.get("exp")
    return JoinToken(
        identity=identity,
        name=_str(claims, "name"),
        room=room,
        grants=_grants(claims.get("grants")),
        room_settings=_room_settings(claims.get("roomSettings")),
        expires_at=float(exp) if isinstance(exp, int | float) else 0.0,
        jti=claims.get("jti") if isinstance(claims.get("jti"), str) else None,
    )


def create(
    auth: AuthSettings,
    *,
    room: str,
    identity: str,
    name: str | None = None,
    grants: Grants = DEFAULT,
    ttl_seconds: float = 3600,
    room_settings: dict[str, Any] | None = None,
    now: float | None = None,
) -> str:
    """A join token signed with ``auth.token_secret`` (HS256): what ``sfu token create`` prints."""
    if auth.token_secret is None:
        raise ValueError("auth.token_secret is unset: set it to sign join tokens")
    if room == "*":
        raise ValueError("a token names one room")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": identity,
        "room": room,
        "iat": issued,
        "exp": issued + max(1, int(ttl_seconds)),
        "jti": secrets.token_urlsafe(12),
        "grants": grants.claims(),
    }
    if name:
        claims["name"] = name
    if room_settings:
        claims["roomSettings"] = room_settings
    return jwt.encode(claims, auth.token_secret.get_secret_value(), algorithm="HS256")
