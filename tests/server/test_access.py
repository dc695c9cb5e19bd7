"""Access control at the Socket.IO level (#13): join tokens, room access policies, passwords,
create_on_join, bans after removal. Real python-socketio clients against a real server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
import socketio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sfu.access import tokens
from sfu.access.grants import DEFAULT
from tests.conftest import Client
from tests.support.checks import assert_refusal, plain

SECRET = "s" * 40
PREVIOUS = "p" * 40
AUTH = {"token_secret": SECRET}


def mint(room: str = "r", sub: str = "alice", key: Any = SECRET, alg: str = "HS256", **claims):
    now = int(time.time())
    body = {"sub": sub, "name": sub.title(), "room": room, "iat": now, "exp": now + 600}
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=alg)


async def refused(client: Client, payload: dict[str, Any], code: str) -> dict[str, Any]:
    ack = await client.call("join-room", {"userId": "u", "userName": "U", **payload})
    assert_refusal(ack, allowed={code})
    return ack


@pytest.fixture
async def connect(make_server):
    made: list[Client] = []

    async def open_(running, headers: dict[str, str] | None = None) -> Client:
        client = Client(running.url)
        if headers:
            await client.sio.connect(
                running.url, transports=["websocket"], headers=headers, wait_timeout=10
            )
        else:
            await client.connect()
        made.append(client)
        return client

    yield open_
    for client in made:
        await client.close()


# -- tokens -------------------------------------------------------------------------------------
async def test_a_token_is_the_identity_and_the_name(make_server, connect) -> None:
    running = await make_server(auth=AUTH)
    alice, bob = await connect(running), await connect(running)
    ack = await alice.join("r", "mallory", "Mallory", token=mint(sub="alice", name="Alice A"))
    assert ack["userId"] == "alice" and ack["userName"] == "Alice A"
    assert ack["role"] == "moderator" and ack["access"] == "open" and ack["locked"] is False
    assert ack["grants"] == {
        "publish": {"audio": True, "video": True, "screen": True},
        "subscribe": True,
        "chat": True,
        "record": True,  # the room's first moderator (recording.who_can_record = moderators)
        "moderate": True,
    }  # a P2P room (the default mode) records too (#19)
    await bob.join("r", "bob", "Bob")
    [joined] = await alice.wait_for("user-joined")
    assert joined["userId"] == "bob" and joined["role"] == "participant"
    [others] = await bob.wait_for("room-participants")
    assert [(p["userId"], p["userName"], p["role"]) for p in others] == [
        ("alice", "Alice A", "moderator")
    ]


async def test_bad_tokens_are_refused_and_create_nothing(make_server, connect) -> None:
    running = await make_server(auth=AUTH, limits={"password_attempts_per_minute": 1000})
    client = await connect(running)
    now = int(time.time())
    cases = {
        "token_expired": [mint(exp=now - 60, iat=now - 700)],
        "invalid_token": [
            mint(key="another secret that is long enough.."),  # a wrong signature
            mint(room="elsewhere"),
            mint(room="*"),
            mint(exp=None),
            mint(nbf=now + 3600),
            mint(sub=""),
            mint(sub="bad id with spaces"),
            mint(grants={"publish": "yes"}),
            mint(grants=[]),
            mint(roomSettings={"mode": "mesh"}),
            mint(alg="none", key=None),
            "not.a.jwt",
            "x" * 9000,
            mint()[:-3] + "AAA",  # tampered
        ],
        "forbidden": [mint(grants={"join": False})],
    }
    for code, given in cases.items():
        for token in given:
            ack = await refused(client, {"roomId": "r", "token": token}, code)
            assert ack["message"]
    assert running.server.rooms.get("r") is None


async def test_an_expired_token_within_the_leeway_still_joins(make_server, connect) -> None:
    running = await make_server(auth=AUTH)
    client = await connect(running)
    now = int(time.time())
    await client.join("r", "x", token=mint(exp=now - 5, iat=now - 600))


async def test_key_rotation_keeps_the_previous_secret_valid(make_server, connect) -> None:
    running = await make_server(auth={"token_secret": SECRET, "token_secret_previous": PREVIOUS})
    old, new, third = await connect(running), await connect(running), await connect(running)
    assert (await new.join("r", "x", token=mint(sub="new", key=SECRET)))["userId"] == "new"
    assert (await old.join("r", "x", token=mint(sub="old", key=PREVIOUS)))["userId"] == "old"
    ack = await refused(
        third, {"roomId": "r", "token": mint(sub="t", key="t" * 40)}, "invalid_token"
    )
    assert "signature" in ack["message"]


async def test_es256_tokens_with_the_public_key(make_server, connect) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    running = await make_server(auth={"token_public_key": pem.decode()})
    client, other = await connect(running), await connect(running)
    ack = await client.join("r", "x", token=mint(sub="es", key=private, alg="ES256"))
    assert ack["userId"] == "es"
    # An HS256 token "signed" with the public key (the algorithm confusion attack): refused.
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    now = int(time.time())
    body = _b64(json.dumps({"sub": "eve", "room": "r", "exp": now + 600}).encode())
    mac = hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{body}.{_b64(mac)}"
    await refused(other, {"roomId": "r", "token": forged}, "invalid_token")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def test_token_access_needs_a_token_and_tells_nothing(make_server, connect) -> None:
    running = await make_server(auth=AUTH, rooms={"access": "token"})
    alice, eve = await connect(running), await connect(running)
    await alice.join("r", "x", token=mint())
    for room in ("r", "nope"):  # an existing room and a missing one answer alike
        ack = await refused(eve, {"roomId": room}, "token_required")
        assert ack["message"] == "this meeting needs a join token"
    assert running.server.rooms.get("nope") is None
    await asyncio.sleep(0.2)
    assert eve.events == []


async def test_token_grants_are_enforced(make_server, connect) -> None:
    running = await make_server(auth=AUTH)
    quiet, viewer, peer = await connect(running), await connect(running), await connect(running)
    await peer.join("r", "peer")
    ack = await quiet.join(
        "r", "x", token=mint(sub="quiet", grants={"chat": False, "publish": {"audio": True}})
    )
    assert ack["grants"]["publish"] == {"audio": True, "video": False, "screen": False}
    assert ack["grants"]["chat"] is False
    assert_refusal(await quiet.call("chat-message", {"message": "hi"}), allowed={"forbidden"})
    assert_refusal(await quiet.call("media-state", {"video": True}), allowed={"forbidden"})
    assert (await quiet.call("media-state", {"audio": True}))["ok"]
    # P2P: nobody may send media to the other (neither publish nor subscribe): no relay.
    await viewer.join(
        "r", "x", token=mint(sub="ghost", grants={"publish": False, "subscribe": False})
    )
    signal = {"targetUserId": "peer", "userId": "ghost", "signal": {"type": "offer", "sdp": "v=0"}}
    ack = await viewer.call("signal-send", signal)
    assert_refusal(ack, allowed={"forbidden"})
    assert "publish or subscribe" in ack["message"]
    await asyncio.sleep(0.2)
    assert peer.received("chat-message") == [] and peer.received("signal-receive") == []


async def test_sfu_publish_and_subscribe_grants(make_server, connect) -> None:
    running = await make_server(auth=AUTH)
    client = await connect(running)
    await client.join(
        "s",
        "x",
        mode="sfu",
        token=mint(room="s", grants={"publish": {"audio": True}, "subscribe": False}),
    )
    video = (
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=sendonly\r\n"
    )
    ack = await client.call("sfu-publish", {"description": {"type": "offer", "sdp": video}})
    assert_refusal(ack, allowed={"forbidden"})
    assert ack["message"] == "needs the publish grant for camera"
    audio = video.replace("m=video", "m=audio")
    ack = await client.call(
        "sfu-publish",
        {"description": {"type": "offer", "sdp": audio}, "sources": {"0": "screen-audio"}},
    )
    assert ack["message"] == "needs the publish grant for screen-audio"
    assert_refusal(await client.call("sfu-subscribe", {}), allowed={"forbidden"})
    router = running.server.rooms.get("s").router
    assert router.producers == {}


# -- passwords ----------------------------------------------------------------------------------
async def test_password_room_wrong_then_right(make_server, connect) -> None:
    running = await make_server()
    alice, bob = await connect(running), await connect(running)
    ack = await alice.join("pw", "alice", access="password", password="open sesame")
    assert ack["access"] == "password"
    room = running.server.rooms.get("pw")
    assert room.password_hash.startswith("$argon2id$")
    assert "open sesame" not in repr(plain(room))  # only the hash is kept
    await refused(bob, {"roomId": "pw", "userId": "bob"}, "password_required")
    ack = await refused(
        bob, {"roomId": "pw", "userId": "bob", "password": "Open sesame"}, "wrong_password"
    )
    assert ack["message"] == "wrong password"
    await bob.join("pw", "bob", password="open sesame")


async def test_password_floor_needs_a_password_to_create(make_server, connect) -> None:
    running = await make_server(rooms={"access": "password"})
    alice = await connect(running)
    await refused(alice, {"roomId": "new"}, "password_required")
    assert running.server.rooms.get("new") is None
    ack = await alice.join("new", "alice", password="pw")  # the creator sets it
    assert ack["access"] == "password"


async def test_password_guessing_is_limited_per_address(make_server, connect) -> None:
    running = await make_server(limits={"password_attempts_per_minute": 5})
    alice, eve = await connect(running), await connect(running)
    await alice.join("pw", "alice", password="right")
    for n in range(5):  # the burst
        await refused(eve, {"roomId": "pw", "password": f"guess{n}"}, "wrong_password")
    ack = await refused(eve, {"roomId": "pw", "password": "right"}, "rate_limited")
    assert "wait a minute" in ack["message"]
    assert len(running.server.rooms.get("pw").participants) == 1


async def test_password_guessing_is_limited_per_room(make_server, connect) -> None:
    """Many addresses (a botnet) against one room: the room's own limit (x10) holds."""
    running = await make_server(
        limits={"password_attempts_per_minute": 5},
        server={"trusted_proxies": ["127.0.0.1"]},
    )
    alice = await connect(running)
    await alice.join("pw", "alice", password="right")
    codes = []
    started = time.monotonic()
    for n in range(40):  # until the room's limit answers (argon2 takes a while: refills)
        if "rate_limited" in codes:
            break
        bot = await connect(running, headers={"X-Forwarded-For": f"203.0.113.{n + 1}"})
        for m in range(5):
            ack = await bot.call(
                "join-room",
                {"roomId": "pw", "userId": "u", "userName": "U", "password": f"g{n}-{m}"},
            )
            codes.append(ack["error"])
        await bot.close()
    # No address exceeded its own 5: the room's 50 (plus what refilled meanwhile) stopped them.
    refilled = (time.monotonic() - started) * 50 / 60
    assert codes[:50] == ["wrong_password"] * 50
    assert "rate_limited" in codes[50:]
    assert "rate_limited" not in codes[: codes.index("rate_limited") // 5 * 5]  # whole bots
    assert codes.count("wrong_password") <= 50 + refilled + 1
    # Another room is not affected, nor is the address limit of a fresh address elsewhere.
    fresh = await connect(running, headers={"X-Forwarded-For": "198.51.100.7"})
    await fresh.join("other", "carol", password="x")


# -- unknown rooms ------------------------------------------------------------------------------
async def test_create_on_join_false(make_server, connect) -> None:
    running = await make_server(auth=AUTH, rooms={"create_on_join": False})
    a, b, c = await connect(running), await connect(running), await connect(running)
    ack = await refused(a, {"roomId": "typo"}, "unknown_room")
    assert ack["message"] == "This meeting does not exist"
    await refused(b, {"roomId": "typo", "token": mint(room="typo")}, "forbidden")
    assert running.server.rooms.get("typo") is None
    creator = mint(
        room="typo",
        grants={"createRoom": True},
        roomSettings={"mode": "sfu", "password": "pw", "maxParticipants": 2},
    )
    ack = await c.join("typo", "x", token=creator)
    assert ack["mode"] == "sfu" and ack["access"] == "password" and ack["role"] == "moderator"
    d, e = await connect(running), await connect(running)
    await d.join("typo", "d", password="pw")
    await refused(e, {"roomId": "typo", "password": "pw"}, "room_full")


# -- removal and bans ---------------------------------------------------------------------------
async def test_a_removed_token_cannot_come_back(make_server, connect) -> None:
    running = await make_server(auth=AUTH, rooms={"removal_ban_seconds": 600})
    alice, mallory = await connect(running), await connect(running)
    await alice.join("r", "alice")
    token = mint(sub="mallory", jti="one")
    await mallory.join("r", "x", token=token)
    ack = await alice.call("remove-participant", {"userId": "mallory", "reason": "spam"})
    assert ack["ok"] and ack["banSeconds"] == 600
    [removed] = await mallory.wait_for("removed")
    assert removed == {"by": "alice", "byName": "alice", "reason": "spam", "banSeconds": 600}
    assert (await alice.wait_for("user-left")) == [{"userId": "mallory"}]
    ack = await refused(mallory, {"roomId": "r", "token": token}, "removed")  # the replay
    assert "10 minutes" in ack["message"]
    again = await connect(running)
    await refused(again, {"roomId": "r", "token": mint(sub="mallory", jti="two")}, "removed")
    await refused(again, {"roomId": "r", "userId": "mallory"}, "removed")
    assert list(running.server.rooms.get("r").participants) == ["alice"]


async def test_tokens_do_not_work_without_a_configured_secret(server, clients) -> None:
    client = await clients()
    ack = await refused(client, {"roomId": "r", "token": mint()}, "invalid_token")
    assert "accepts no join tokens" in ack["message"]


def test_create_makes_tokens_verify_accepts() -> None:
    from sfu.settings import AuthSettings

    auth = AuthSettings(token_secret=SECRET)
    token = tokens.create(auth, room="r", identity="a", grants=DEFAULT.changed(["record"], True))
    got = tokens.verify(token, auth, "r")
    assert got.identity == "a" and got.grants.record and got.grants.subscribe and got.jti
    with pytest.raises(ValueError):
        DEFAULT.changed(["fly"], True)


async def test_socketio_client_rejects_nothing_odd() -> None:
    assert socketio.AsyncClient  # the import above is used by the connect fixture's clients
