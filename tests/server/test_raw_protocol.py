"""Hostile participants on the wire: raw Engine.IO / Socket.IO frames against a real server.

Every test plays an attacker with tests/support/raw_socketio.py (which can send what no
Socket.IO library would) next to ordinary participants, and asserts what those participants
would see: their socket stays up, they receive nothing unparseable and nothing a refused
event carried, nobody leaves the room by someone else's trick, limits hold, and the server
logs no traceback and no flood of lines.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import RunningServer
from tests.support.checks import assert_no_tracebacks, assert_refusal, watched
from tests.support.raw_socketio import (
    HOSTILE_JSON,
    Raw,
    RawPool,
    RawSocketIO,
    nested,
)

MakeServer = Callable[..., Awaitable[RunningServer]]
SIGNAL = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"}


@pytest.fixture
async def pool(server: RunningServer) -> AsyncIterator[RawPool]:
    async with RawPool(server.url) as made:
        yield made


async def room_of(pool: RawPool, room: str = "r", *names: str) -> list[RawSocketIO]:
    """Raw participants joined to one room, in order (the first creates it)."""
    people = []
    for name in names or ("alice", "bob"):
        client = await pool.connect()
        await client.join(room, name, name.title())
        people.append(client)
    return people


async def flush(*clients: RawSocketIO) -> None:
    """Everything the server queued to these clients so far has arrived."""
    await asyncio.gather(*(c.barrier() for c in clients))


def in_room(server: RunningServer, client: RawSocketIO) -> str | None:
    where = server.server.rooms.locate(client.sid or "")
    return where[1].user_id if where else None


def assert_clean(pool: RawPool, caplog: pytest.LogCaptureFixture) -> None:
    """What every test ends with: no unparseable frame received, no traceback logged."""
    assert not pool.violations(), pool.violations()[:5]
    assert_no_tracebacks(caplog)


async def chat_reaches(sender: RawSocketIO, receiver: RawSocketIO, text: str) -> None:
    """The sender's socket still works: its chat message is acked and delivered."""
    seen = len(receiver.events("chat-message"))
    ack = await sender.call("chat-message", {"message": text})
    assert ack["ok"], ack
    messages = await receiver.wait_event("chat-message", seen + 1)
    assert messages[-1]["message"] == text, messages[-1]


# -- malformed frames ----------------------------------------------------------------------------
# (frame, ack id the frame asks for, codes that answer may carry; None: no answer required,
# but one that comes must be invalid_payload).
FRAMES: list[tuple[str, int | None, set[str] | None]] = [
    ("4", None, None),
    ("42", None, None),
    ("42{", None, None),
    ('42["chat-message",', None, None),
    ("42not json", None, None),
    ('4277["chat-message",{"message":"cut', 77, None),
    ("4278not json", 78, None),
    ("4271[1,2]", 71, {"unknown_event"}),
    ("4272[]", 72, {"unknown_event", "invalid_payload"}),
    ("4273[null]", 73, {"unknown_event"}),
    ('4274[""]', 74, {"unknown_event"}),
    ('4275[{"a":1}]', 75, {"unknown_event"}),
    ('4276[["chat-message"]]', 76, {"unknown_event"}),
    ('4279{"message":"x"}', 79, {"unknown_event", "invalid_payload"}),
    ('4280"chat-message"', 80, {"unknown_event", "invalid_payload"}),
    ("4281[true]", 81, {"unknown_event"}),
    ('42123456789012345["zz-nothing"]', 123456789012345, {"unknown_event"}),
    # An ack id no client could have made: nothing to answer, and nothing delivered.
    ("42" + "9" * 200 + '["chat-message",{"message":"long id"}]', None, None),
    ('42/nope,5["chat-message",{"message":"other namespace"}]', None, None),
    ("40/nope,", None, None),
    ("40", None, None),  # a second CONNECT of the connected namespace
    ("43", None, None),
    ('431["unasked"]', None, None),
    ('44{"message":"from a client"}', None, None),
    ('461-9[{"_placeholder":true,"num":0}]', None, None),
    ("49", None, None),
    ("4x", None, None),
    ("2", None, None),
    ("3", None, None),
    ("6", None, None),
]
# Not even an Engine.IO packet: the server may close the connection, but cleanly.
ENGINE_GARBAGE = ["", "garbage", "\x00\x01\x02", "5", "9", "\u00ff\u4e2d", "7{}"]


@pytest.mark.parametrize(
    ("frame", "ack_id", "codes"), FRAMES, ids=[repr(f[0][:24]) for f in FRAMES]
)
async def test_malformed_packet_leaves_everyone_connected(
    server: RunningServer,
    pool: RawPool,
    caplog: pytest.LogCaptureFixture,
    frame: str,
    ack_id: int | None,
    codes: set[str] | None,
) -> None:
    alice, bob = await room_of(pool)
    sid = alice.sid
    mark = bob.mark()
    await alice.send_text(frame)
    if ack_id is not None and codes is not None:
        [ack] = await alice.wait_ack(ack_id, timeout=3)
        assert_refusal(ack, allowed=codes)
    # The attacker's socket still works, the same socket in the same room.
    await chat_reaches(alice, bob, "still here")
    assert alice.connected and alice.sid == sid and in_room(server, alice) == "alice"
    # Bob saw nobody leave and received only the proof message.
    await flush(bob)
    got = [(e, a[0]["message"] if e == "chat-message" else a) for e, a in bob.events(since=mark)]
    assert got == [("chat-message", "still here")]
    if ack_id is not None and codes is None and alice.has_ack(ack_id):
        [ack] = await alice.wait_ack(ack_id)
        assert_refusal(ack, allowed={"invalid_payload"})
    assert_clean(pool, caplog)


@pytest.mark.parametrize("frame", ENGINE_GARBAGE, ids=[repr(f) for f in ENGINE_GARBAGE])
async def test_engineio_garbage_is_refused_without_a_traceback(
    server: RunningServer, pool: RawPool, caplog: pytest.LogCaptureFixture, frame: str
) -> None:
    """The sender's socket may go (it is not speaking Engine.IO), but quietly, and nobody
    else notices more than its user-left."""
    alice, bob = await room_of(pool)
    mark = bob.mark()
    await alice.send_text(frame)
    try:
        await alice.barrier(timeout=2)
    except (TimeoutError, ConnectionError):
        pass
    await flush(bob)
    if alice.connected:
        await chat_reaches(alice, bob, "still here")
        assert in_room(server, alice) == "alice"
    else:
        assert bob.events(since=mark) == [("user-left", [{"userId": "alice"}])]
    assert bob.connected
    assert_clean(pool, caplog)


# -- what JSON cannot carry --------------------------------------------------------------------
@pytest.mark.parametrize("name", list(HOSTILE_JSON))
async def test_signal_json_cannot_carry_never_reaches_the_target(
    server: RunningServer, pool: RawPool, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    """The attack of issue 12: a NaN relayed in signal-receive made socket.io-client drop the
    victim's connection. Refused at the sender; the victim receives nothing and stays."""
    alice, bob = await room_of(pool)
    bob_sid, bob_eio = bob.sid, bob.eio_sid
    mark = bob.mark()
    signal = {"type": "candidate", "x": HOSTILE_JSON[name]}
    ack = await alice.call(
        "signal-send", {"targetUserId": "bob", "userId": "alice", "signal": signal}
    )
    assert_refusal(ack, allowed={"invalid_payload"})
    chat = await alice.call("chat-message", {"message": "m", "extra": [[HOSTILE_JSON[name]]]})
    assert_refusal(chat, allowed={"invalid_payload"})
    await flush(bob)
    assert bob.events(since=mark) == []
    # A proper signal still goes through to the same, never reconnected, socket.
    assert (
        await alice.call(
            "signal-send", {"targetUserId": "bob", "userId": "alice", "signal": SIGNAL}
        )
    )["ok"]
    assert (await bob.wait_event("signal-receive"))[-1] == {"userId": "alice", "signal": SIGNAL}
    assert bob.connected and (bob.sid, bob.eio_sid) == (bob_sid, bob_eio)
    assert_clean(pool, caplog)


@pytest.mark.parametrize("name", ["32-digit int", "depth 32", "1e308", "surrogate pair"])
async def test_values_inside_the_limits_are_relayed(
    pool: RawPool, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    """The limits' other side: the strict-JSON gate does not refuse what a browser may send."""
    alice, bob = await room_of(pool)
    sent, want = {
        "32-digit int": (Raw("9" * 32), int("9" * 32)),
        "depth 32": (nested(29), _list_of_depth(29)),
        "1e308": (Raw("1e308"), 1e308),
        "surrogate pair": ("\ud83d\ude00", "\U0001f600"),
    }[name]
    signal = {"type": "candidate", "x": sent}
    ack = await alice.call(
        "signal-send", {"targetUserId": "bob", "userId": "alice", "signal": signal}
    )
    assert ack["ok"], ack
    [got] = await bob.wait_event("signal-receive")
    assert got["signal"]["x"] == want
    assert_clean(pool, caplog)


def _list_of_depth(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


async def test_ids_with_a_trailing_newline_are_refused(
    server: RunningServer, pool: RawPool, caplog: pytest.LogCaptureFixture
) -> None:
    """roomId/userId are "A-Z a-z 0-9 _ -" only: a regex "$" also matches before a final
    newline, so "alice\\n" must be checked as a whole string."""
    client = await pool.connect()
    for payload in (
        {"roomId": "room\n", "userId": "alice", "userName": "Alice"},
        {"roomId": "room", "userId": "alice\n", "userName": "Alice"},
    ):
        assert_refusal(await client.call("join-room", payload), allowed={"invalid_payload"})
    assert server.server.rooms.rooms == {}
    assert_clean(pool, caplog)


# -- binary ------------------------------------------------------------------------------------
async def test_binary_attachment_is_refused_and_not_relayed(
    pool: RawPool, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = await room_of(pool)
    mark = bob.mark()
    placeholder = {"_placeholder": True, "num": 0}
    ack_id = await alice.emit(
        "signal-send",
        {"targetUserId": "bob", "userId": "alice", "signal": {"type": "offer", "sdp": placeholder}},
        binary=[b"\x00binary sdp"],
    )
    assert ack_id is not None
    [ack] = await alice.wait_ack(ack_id)
    assert_refusal(ack, allowed={"invalid_payload"})
    chat_id = await alice.emit("chat-message", {"message": placeholder}, binary=[b"x"])
    assert chat_id is not None
    assert_refusal((await alice.wait_ack(chat_id))[0], allowed={"invalid_payload"})
    await flush(bob)
    assert bob.events(since=mark) == [] and bob.binary_frames == []
    await chat_reaches(alice, bob, "after binary")
    assert_clean(pool, caplog)


async def test_bare_binary_frames_are_dropped(
    server: RunningServer, pool: RawPool, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = await room_of(pool)
    for data in (b"", b"\x00", b'42["chat-message",{"message":"bin"}]', b"\xff" * 1000):
        await alice.send_binary(data)
    await chat_reaches(alice, bob, "after frames")
    assert [m["message"] for m in bob.events("chat-message")] == ["after frames"]
    assert in_room(server, alice) == "alice"
    assert_clean(pool, caplog)


def rss_bytes() -> int:
    """This process's resident memory (the server runs in it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def test_announced_attachments_are_not_buffered(
    server: RunningServer, pool: RawPool, caplog: pytest.LogCaptureFixture
) -> None:
    """A BINARY_EVENT announcing 999999 attachments, then 200 frames of 256 KiB (50 MiB):
    the server keeps none of it, and the socket goes on working (or is closed cleanly)."""
    alice, bob = await room_of(pool)
    chunk = bytes(256 * 1024)
    gc.collect()
    before = rss_bytes()
    await alice.send_text('45999999-1["chat-message",{"message":{"_placeholder":true,"num":0}}]')
    for _ in range(200):
        if not alice.connected:
            break
        await alice.send_binary(chunk)
    await asyncio.sleep(0.2)
    gc.collect()
    grown = rss_bytes() - before
    assert grown < 10 * 1024 * 1024, f"RSS grew {grown / 2**20:.1f} MiB"
    if alice.connected:
        if alice.has_ack(1):
            assert_refusal((await alice.wait_ack(1))[0], allowed={"invalid_payload"})
        await chat_reaches(alice, bob, "after the flood")
    else:  # refused cleanly: the server closed the websocket, and alice left the room
        assert alice.close_code is not None
    await flush(bob)
    assert bob.connected and bob.binary_frames == []
    assert_clean(pool, caplog)


# -- reserved names ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["disconnect", "connect", "connect_error", "*", "message", "disconnecting"]
)
async def test_reserved_event_names_do_nothing(
    server: RunningServer, pool: RawPool, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    """A client event named ``disconnect`` used to run the server's disconnect handler: the
    sender left its room (everyone saw user-left) and its rate limits were reset."""
    alice, bob, carol = await room_of(pool, "r", "alice", "bob", "carol")
    sid = alice.sid
    await alice.emit(name, ack=False)
    await alice.emit(name, {"reason": "client namespace disconnect"}, ack=False)
    ack = await alice.call(name, {})
    assert_refusal(ack, allowed={"unknown_event"})
    await flush(bob, carol)
    assert bob.events("user-left") == [] and carol.events("user-left") == []
    assert in_room(server, alice) == "alice" and alice.sid == sid and alice.connected
    await chat_reaches(alice, bob, f"after {name}")
    assert_clean(pool, caplog)


# -- rate limits -------------------------------------------------------------------------------
@pytest.mark.parametrize("trick", ["fake-disconnect", "leave-and-rejoin", "plain"])
async def test_chat_flood_is_capped_whatever_the_sender_does(
    server: RunningServer, pool: RawPool, caplog: pytest.LogCaptureFixture, trick: str
) -> None:
    """2000 chat messages in about 2 s, with fake ``disconnect`` events (and rejoins) or real
    leave/join cycles sprinkled in: the room receives at most burst + rate * elapsed."""
    limits = server.settings.limits
    alice, bob = await room_of(pool)
    join = {"roomId": "r", "userId": "alice", "userName": "Alice"}
    ids: list[int] = []
    start = time.monotonic()
    for i in range(2000):
        if i % 50 == 25 and trick != "plain":
            if trick == "fake-disconnect":
                await alice.emit("disconnect", ack=False)
            else:
                await alice.emit("leave-room", {})
            await alice.emit("join-room", join)
        ack_id = await alice.emit("chat-message", {"message": f"flood {i}"})
        assert ack_id is not None
        ids.append(ack_id)
        if i % 20 == 19:
            await asyncio.sleep(0.02)  # spread over ~2 s
    acks = [(await alice.wait_ack(i, timeout=10))[0] for i in ids]
    elapsed = time.monotonic() - start
    await flush(bob)
    delivered = [m for m in bob.events("chat-message") if m["userId"] == "alice"]
    bound = limits.chat_burst + limits.chat_per_second * elapsed + 2
    assert len(delivered) <= bound, (
        f"{len(delivered)} delivered in {elapsed:.1f} s, bound {bound:.0f}"
    )
    assert len(delivered) >= limits.chat_burst  # the limit, not a broken socket
    assert {a.get("error") for a in acks if not a["ok"]} <= {"rate_limited", "not_in_room"}
    if trick == "fake-disconnect":
        assert bob.events("user-left") == []
    assert_clean(pool, caplog)


async def test_unknown_events_take_from_the_other_bucket(
    server: RunningServer, pool: RawPool, caplog: pytest.LogCaptureFixture
) -> None:
    limits = server.settings.limits
    alice, bob = await room_of(pool)
    start = time.monotonic()
    ids = [await alice.emit(f"no-such-event-{i % 7}", {}) for i in range(200)]
    acks = [(await alice.wait_ack(i))[0] for i in ids if i is not None]
    elapsed = time.monotonic() - start
    codes = [a["error"] for a in acks]
    assert set(codes) == {"unknown_event", "rate_limited"}, set(codes)
    assert (
        codes.count("unknown_event") <= limits.other_burst + limits.other_per_second * elapsed + 2
    )
    # The same bucket as join-room, leave-room and media-state: those wait too now.
    assert_refusal(await alice.call("media-state", {"audio": True}), allowed={"rate_limited"})
    assert_clean(pool, caplog)


# -- log amplification -------------------------------------------------------------------------
async def test_malformed_packets_do_not_flood_the_log(
    pool: RawPool, caplog: pytest.LogCaptureFixture
) -> None:
    """500 malformed packets of a handful of kinds: a bounded number of log lines."""
    caplog.set_level(logging.DEBUG, logger="sfu")
    caplog.set_level(logging.INFO)
    alice, bob = await room_of(pool)
    await flush(alice, bob)
    first = len(caplog.records)
    for i in range(500):
        match i % 5:
            case 0:
                await alice.emit("chat-message", {"message": 5})
            case 1:
                await alice.emit("nope", {})
            case 2:
                await alice.send_text("42[garbage")
            case 3:
                await alice.send_binary(b"\x00" * 16)
            case _:
                await alice.emit("signal-send", {"signal": Raw("NaN")})
    await flush(alice)
    lines = [r for r in caplog.records[first:] if watched(r)]
    shown = "\n".join(f"{r.name}: {r.getMessage()[:120]}" for r in lines[:40])
    assert len(lines) <= 25, f"{len(lines)} log lines for 500 packets:\n{shown}"
    assert_clean(pool, caplog)


# -- per-address caps --------------------------------------------------------------------------
async def test_sockets_per_address_are_capped(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    running = await make_server(limits={"max_sockets_per_address": 3})
    async with RawPool(running.url) as pool:
        first = [await pool.connect() for _ in range(3)]
        # Refused at the Engine.IO handshake (it counts sessions, namespace or not): 401.
        async with aiohttp.ClientSession() as http:
            url = f"{running.url}/socket.io/?EIO=4&transport=polling"
            async with http.get(url) as resp:
                assert resp.status == 401, resp.status
                body = await resp.json()
                assert body["error"] == "too_many_connections", body
                assert "too many connections" in body["message"], body
        with pytest.raises((ConnectionError, aiohttp.ClientError)):
            await pool.connect()
        # Those already connected are not disturbed.
        await first[0].join("r", "alice")
        await first[1].join("r", "bob")
        await chat_reaches(first[0], first[1], "under the cap")
        # The cap counts open sockets: one closes, one more may come.
        await first[2].close()
        for _ in range(50):
            try:
                await pool.connect()
                break
            except (ConnectionError, aiohttp.ClientError):
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("a closed socket still counts against the cap")
        assert_clean(pool, caplog)


async def test_joins_cannot_fill_the_rooms_table(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Room creation by join-room shares POST /api/rooms' per-address limit (burst 5)."""
    running = await make_server()
    per_minute = running.settings.rooms.create_per_minute
    async with RawPool(running.url) as pool:
        start = time.monotonic()
        answers = []
        for i in range(12):
            client = await pool.connect()
            answers.append(
                await client.call(
                    "join-room", {"roomId": f"fill{i}", "userId": "u", "userName": "U"}
                )
            )
        elapsed = time.monotonic() - start
        made = [a for a in answers if a["ok"]]
        assert len(made) <= 5 + per_minute / 60 * elapsed + 1, answers
        for refused in (a for a in answers if not a["ok"]):
            assert_refusal(refused, allowed={"rate_limited"})
        assert len(running.server.rooms.rooms) == len(made) < 12
        # Joining a room that exists creates nothing: still allowed.
        guest = await pool.connect()
        assert (
            await guest.call("join-room", {"roomId": "fill0", "userId": "guest", "userName": "G"})
        )["ok"]
        # ... and POST /api/rooms draws from the same, spent, budget.
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{running.url}/api/rooms", json={"mode": "p2p"}) as resp:
                assert resp.status == 429 and (await resp.json())["error"] == "rate_limited"
        assert_clean(pool, caplog)


async def test_rest_room_creation_spends_the_join_budget(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    running = await make_server()
    async with aiohttp.ClientSession() as http:
        for _ in range(5):
            async with http.post(f"{running.url}/api/rooms", json={"mode": "p2p"}) as resp:
                assert resp.status == 201
    async with RawPool(running.url) as pool:
        client = await pool.connect()
        ack = await client.call("join-room", {"roomId": "one-more", "userId": "u", "userName": "U"})
        assert_refusal(ack, allowed={"rate_limited"})
        assert running.server.rooms.get("one-more") is None
        assert_clean(pool, caplog)


# -- the creator's right -----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["sfu", "p2p"])
async def test_creator_right_is_not_taken_with_the_user_id(
    make_server: MakeServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    running = await make_server(
        recording={"who_can_record": "creator", "directory": str(tmp_path), "min_free_mb": 0}
    )
    async with RawPool(running.url) as pool:
        alice = await pool.connect()
        first = await alice.join("r", "alice", "Alice", mode=mode)
        assert first["isCreator"] is True
        bob = await pool.connect()
        assert (await bob.join("r", "bob", "Bob"))["isCreator"] is False
        assert (await alice.call("leave-room"))["ok"]
        mallory = await pool.connect()
        taken = await mallory.join("r", "alice", "Alice")
        assert taken["isCreator"] is False, taken
        assert taken["role"] == "participant"
        # The right went to the longest-present participant (#13 handover), not to the id.
        assert running.server.rooms.get("r").participants["bob"].role == "moderator"
        if mode == "sfu":
            assert_refusal(await mallory.call("recording-start", {}), allowed={"forbidden"})
            assert running.server.recordings.active == {}
        assert_clean(pool, caplog)


async def test_creator_keeps_the_right_on_a_rejoin_with_its_token(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The positive side (docs/protocol.md): the creator's own reconnect keeps the right."""
    running = await make_server()
    async with RawPool(running.url) as pool:
        alice = await pool.connect()
        token = (await alice.join("r", "alice", "Alice"))["rejoinToken"]
        bob = await pool.connect()
        await bob.join("r", "bob", "Bob")
        again = await pool.connect()  # the old socket is still there (a network drop)
        answer = await again.join("r", "alice", "Alice", rejoinToken=token)
        assert answer["isCreator"] is True
        assert_clean(pool, caplog)


# -- beyond the stated contract: holes found while writing this suite --------------------------
async def test_engineio_sessions_without_a_namespace_are_capped_too(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The per-address cap counts Socket.IO connections; an attacker who never sends the
    namespace CONNECT (``40``) should not hold an unbounded number of Engine.IO sessions
    (each a websocket, a queue and ping tasks on the server) either."""
    cap = 3
    running = await make_server(limits={"max_sockets_per_address": cap})
    async with RawPool(running.url) as pool:
        held = []
        for _ in range(4 * cap):
            try:
                held.append(await pool.connect(connect=False))
            except (ConnectionError, aiohttp.ClientError):
                pass  # refused at the handshake: fine
        await asyncio.sleep(2)
        still_open = sum(c.connected for c in held)
        assert still_open <= cap, f"{still_open} Engine.IO sessions open with a cap of {cap}"
        assert_clean(pool, caplog)


async def sdp_offer() -> str:
    """A real aiortc offer (one audio m-line), for publishes."""
    from aiortc import RTCPeerConnection

    from sfu.loadtest import peer_configuration

    pc = RTCPeerConnection(peer_configuration())
    pc.addTransceiver("audio", direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


def with_ufrag(sdp: str, ufrag: str) -> str:
    """The same offer as if from a new RTCPeerConnection (the router starts afresh)."""
    return re.sub(r"a=ice-ufrag:\S+", f"a=ice-ufrag:{ufrag}", sdp)


async def test_concurrent_publish_offers_never_fail_internally(
    netns: None, server: RunningServer, pool: RawPool, caplog: pytest.LogCaptureFixture
) -> None:
    """Handlers run concurrently: offers from new connections arriving together (a
    reloading page, or an attacker) must each get ok or a documented refusal. Each new
    offer used to close the publish connection another was still being applied to:
    internal_error and a traceback per offer."""
    alice = await pool.connect()
    await alice.join("r", "alice", "Alice", mode="sfu")
    offer = await sdp_offer()
    ids = [
        await alice.emit(
            "sfu-publish", {"description": {"type": "offer", "sdp": with_ufrag(offer, f"u{i}x")}}
        )
        for i in range(20)
    ]
    acks = [(await alice.wait_ack(i, timeout=20))[0] for i in ids if i is not None]
    for ack in acks:
        if not ack["ok"]:
            assert_refusal(ack)
    assert any(a["ok"] for a in acks)
    router = server.server.rooms.rooms["r"].router
    assert list(router.participants) == ["alice"]
    assert_clean(pool, caplog)


@pytest.mark.parametrize("how", ["leave-room", "disconnect"])
async def test_leaving_while_the_join_is_in_flight_leaves_no_media_ghost(
    netns: None, server: RunningServer, pool: RawPool, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    """join-room then, without waiting for its answer, leave-room (or a dropped socket):
    the SFU router must not keep a participant the room no longer has (it would keep being
    offered every producer, with a server-side peer connection each, until the room ends)."""
    bob = await pool.connect()
    await bob.join("r", "bob", "Bob", mode="sfu")
    for i in range(10):
        eve = await pool.connect()
        await eve.emit("join-room", {"roomId": "r", "userId": f"eve{i}", "userName": "Eve"})
        if how == "leave-room":
            await eve.emit("leave-room", {})
            await eve.barrier()
        await eve.close()
    await asyncio.sleep(0.5)
    room = server.server.rooms.rooms["r"]
    router = room.router
    assert sorted(room.participants) == ["bob"]
    assert sorted(router.participants) == ["bob"], f"router ghosts: {sorted(router.participants)}"
    assert_clean(pool, caplog)
