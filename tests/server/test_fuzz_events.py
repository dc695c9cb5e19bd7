"""Property tests: every client event fed malformed payloads, in an SFU and in a P2P room.

Each payload is a valid one (from the payload models of sfu/validation.py and the SFU
handlers of sfu/media/router.py) with at least one fault that makes it invalid by
construction: a field of the wrong type, missing, or with a bad value, a non-object, a value
JSON cannot carry (NaN, Infinity, 1e999, a 33+ digit integer, nesting over the depth limit,
a lone surrogate), a binary attachment, or a payload over the size limit; extra fields
ride along. Every example asserts what a client of the room would see:

- the sender gets an ack, an error with a code of docs/protocol.md's table (never
  ``internal_error``, never silence); JSON-hostile and binary payloads get ``invalid_payload``;
- the server's state (rooms, participants, names, media state, chat, SFU sessions,
  recordings) is unchanged, and nobody (a second participant of the room, a client in
  another room, a socket in no room) receives anything;
- no traceback is logged, and every frame anyone received is strict JSON.

A positive control per event (a valid payload is accepted and delivered) shows the tests
can tell the difference. The server runs once per test function; Hypothesis' budget comes
from the profile (tests/conftest.py: "ci" by default, ``--hypothesis-profile=long``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import string
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from hypothesis import given
from hypothesis import strategies as st

from sfu import validation
from sfu.loadtest import peer_configuration
from sfu.media.router import SOURCES
from sfu.recording.rooms import LAYOUTS
from tests.conftest import RunningServer
from tests.server.test_recording_events import recording_settings
from tests.support.checks import assert_refusal, server_snapshot, tracebacks
from tests.support.raw_socketio import AckTimeout, Raw, RawPool, RawSocketIO, dumps
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.webrtc  # the SFU rooms' aiortc connections (netns-run)

ROOM, OTHER_ROOM, FRESH_ROOM = "fz-room", "fz-other", "fz-fresh"
ATTACKER, PEER, BYSTANDER, NEWBIE = "mallory", "victim", "bystander", "newbie"
MAX_PAYLOAD = 65536  # limits.max_payload_bytes (default)

# Limits out of the way: the fuzz is about validation, not rate limiting (test_raw_protocol).
HIGH = 10**6
FUZZ_LIMITS = {
    f"{kind}_{what}": HIGH
    for kind in ("chat", "emoji", "signal", "other")
    for what in ("per_second", "burst")
}
# Server events that come on their own (not caused by the example).
AMBIENT = {"sfu-audio-levels"}
SIGNAL = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"}
CANDIDATE = {
    "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 9 typ host",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
}


# -- aiortc sides of the SFU room -------------------------------------------------------------
class SilentTrack(MediaStreamTrack):
    """An audio track that never yields a frame: a real publish, no encoder work."""

    kind = "audio"

    async def recv(self) -> Any:
        await asyncio.Future()  # until the sender is stopped


class MediaPeer:
    """A raw client's aiortc connections: a silent publish; subscribe offers answered."""

    def __init__(self, client: RawSocketIO) -> None:
        self.client = client
        self.publish_pc: RTCPeerConnection | None = None
        self.subscribe_pc: RTCPeerConnection | None = None
        self.session: int | None = None
        self.answer_sdp = ""
        self.answers: list[Any] = []  # acks of our sfu-subscribe-answer
        self._offers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._idle = asyncio.Event()  # no offer waiting or being answered
        self._idle.set()
        client.on("sfu-subscribe-offer", self._offered)
        self._closed = False
        self._task = asyncio.ensure_future(self._answer_forever())

    def _offered(self, args: list[Any]) -> None:
        self._idle.clear()
        self._offers.put_nowait(args[0])

    async def publish(self) -> dict[str, Any]:
        if self.publish_pc is not None:
            await self.publish_pc.close()
        pc = self.publish_pc = RTCPeerConnection(peer_configuration())
        track = SilentTrack()
        pc.addTransceiver(track, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        ack = await self.client.call(
            "sfu-publish",
            {
                "description": {"type": "offer", "sdp": pc.localDescription.sdp},
                "sources": {track.id: "microphone"},
            },
        )
        assert ack["ok"], ack
        await pc.setRemoteDescription(RTCSessionDescription(**ack["description"]))
        return ack

    @property
    def offer_sdp(self) -> str:
        assert self.publish_pc is not None
        return self.publish_pc.localDescription.sdp

    async def _answer_forever(self) -> None:
        # Checked each turn: a cancellation that lands inside an answer being applied can be
        # swallowed on the way (the loop would then wait for the next offer forever).
        while not self._closed:
            offer = await self._offers.get()
            try:
                if offer["session"] != self.session or self.subscribe_pc is None:
                    if self.subscribe_pc is not None:
                        await self.subscribe_pc.close()
                    self.session = offer["session"]
                    self.subscribe_pc = RTCPeerConnection(peer_configuration())
                pc = self.subscribe_pc
                await pc.setRemoteDescription(RTCSessionDescription(**offer["description"]))
                await pc.setLocalDescription(await pc.createAnswer())
                self.answer_sdp = pc.localDescription.sdp
                self.answers.append(
                    await self.client.call(
                        "sfu-subscribe-answer",
                        {
                            "session": self.session,
                            "description": {"type": "answer", "sdp": self.answer_sdp},
                        },
                    )
                )
            except Exception as exc:  # noqa: BLE001 - recorded, asserted by the positive control
                self.answers.append({"ok": False, "error": f"client side: {exc!r}"})
            finally:
                if self._offers.empty():
                    self._idle.set()

    async def settle(self, quiet: float = 0.3) -> None:
        """Until no offer has been waiting or answered for ``quiet`` seconds."""
        while True:
            await self._idle.wait()
            if quiet:
                await asyncio.sleep(quiet)
            if self._idle.is_set():
                return

    async def close(self) -> None:
        self._closed = True
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        for pc in (self.publish_pc, self.subscribe_pc):
            if pc is not None:
                await pc.close()


# -- the world: one server, a room under attack, a bystander room ----------------------------
@dataclass
class World:
    running: RunningServer
    mode: str
    attacker: RawSocketIO  # the room's creator, the sender of every payload
    peer: RawSocketIO  # a second participant of the same room
    stranger: RawSocketIO  # connected, in no room
    bystander: RawSocketIO  # in another room
    media: dict[str, MediaPeer] = field(default_factory=dict)

    @property
    def watchers(self) -> list[RawSocketIO]:
        return [self.peer, self.stranger, self.bystander]

    @property
    def clients(self) -> list[RawSocketIO]:
        return [self.attacker, *self.watchers]

    @property
    def offer_sdp(self) -> str:
        return self.media[ATTACKER].offer_sdp if self.media else SIGNAL["sdp"]

    @property
    def answer_sdp(self) -> str:
        media = self.media.get(ATTACKER)
        return media.answer_sdp if media and media.answer_sdp else SIGNAL["sdp"]

    @property
    def session(self) -> int:
        media = self.media.get(ATTACKER)
        return media.session if media and media.session is not None else 1

    async def ensure(self) -> None:
        """Puts back what an earlier (failed) example changed, so examples stay independent."""
        server = self.running.server
        changed = False
        for room_id in list(server.recordings.active):
            await server.recordings.stop(room_id)
        if server.rooms.locate(self.stranger.sid) is not None:
            await self.stranger.call("leave-room")
        if server.rooms.locate(self.attacker.sid) is None:
            await self.attacker.join(ROOM, ATTACKER, "Mallory", mode=self.mode)
            changed = True
        media = self.media.get(ATTACKER)
        if media is not None:
            router = server.rooms.rooms[ROOM].router
            held = router.participants.get(ATTACKER)
            if held is None or held.publish is None:
                await media.publish()
                changed = True
            # After a repair, let the renegotiations it started finish before the snapshot.
            await asyncio.gather(*(m.settle(0.3 if changed else 0) for m in self.media.values()))


# "-nodes": two nodes on one Redis (#15); the room runs on the first, and the attacker's and
# the stranger's sockets are on the second, so every event of theirs is relayed.
@pytest.fixture
def world_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer | None]:
    """A redis-server for the "-nodes" worlds; set up before make_server, so it stops after
    the nodes."""
    if "nodes" not in str(request.node.callspec.params.get("world", "")):
        yield None
        return
    redis = RedisServer(tmp_path)
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture(params=["p2p", "sfu", "p2p-nodes", "sfu-nodes"])
async def world(
    request: pytest.FixtureRequest,
    world_redis: RedisServer | None,
    make_server: Any,
    tmp_path: Path,
) -> Any:
    mode, _, nodes = str(request.param).partition("-")
    if mode == "sfu":
        request.getfixturevalue("netns")
    server: dict[str, Any] = {}
    if world_redis is not None:
        server = {"redis_url": world_redis.url}
    settings = {
        "limits": FUZZ_LIMITS,
        "rooms": {"create_per_minute": HIGH},
        "recording": recording_settings(tmp_path / "recordings"),
        # No connection closes itself while the examples run.
        "sfu": {"disconnected_timeout_seconds": 300, "negotiation_timeout_seconds": 300},
    }
    running = await make_server(server={**server, "node_id": "a"} if nodes else {}, **settings)
    edge = running
    if nodes:
        edge = await make_server(server={**server, "node_id": "b"}, **settings)
        # On a, in the directory before anyone joins through b.
        await running.server.cluster.enter(running.server.rooms.create(ROOM, mode))
    async with RawPool(running.url) as pool:
        attacker, stranger = [await pool.connect(edge.url) for _ in range(2)]
        peer, bystander = [await pool.connect() for _ in range(2)]
        await attacker.join(ROOM, ATTACKER, "Mallory", mode=mode)
        await peer.join(ROOM, PEER, "Victim")
        await bystander.join(OTHER_ROOM, BYSTANDER, "Bystander", mode=mode)
        w = World(running, mode, attacker, peer, stranger, bystander)
        if mode == "sfu":
            w.media = {ATTACKER: MediaPeer(attacker), PEER: MediaPeer(peer)}
            await w.media[PEER].publish()
            await w.media[ATTACKER].publish()
            # Each answers the other's track: one subscribe session each, then quiet.
            for media in w.media.values():
                for _ in range(200):
                    if media.answers:
                        break
                    await asyncio.sleep(0.05)
            await asyncio.gather(*(m.settle() for m in w.media.values()))
            assert all(m.answers and m.answers[-1]["ok"] for m in w.media.values()), [
                m.answers for m in w.media.values()
            ]
        yield w
        for media in w.media.values():
            await media.close()


# -- payload strategies ----------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    """A client event's payload: its fields (name -> (kind, required)) and its rules."""

    fields: dict[str, tuple[str, bool]]
    object_required: bool = True  # a non-object payload is refused
    none_ok: bool = False  # the event may come without a payload
    at_least_one: bool = False  # media-state: one of its optional fields is needed


SPECS: dict[str, Spec] = {
    "join-room": Spec(
        {
            "roomId": ("ident", True),
            "userId": ("ident", True),
            "userName": ("name", True),
            "mode": ("mode", False),
            "media": ("media", False),
            "rejoinToken": ("token", False),
            "token": ("token", False),
            "password": ("password", False),
            "access": ("access", False),
            "roomName": ("room_name", False),
        }
    ),
    # "any payload is ignored": only what JSON cannot carry, and size, can fault it.
    "leave-room": Spec({}, object_required=False, none_ok=True),
    "signal-send": Spec(
        {
            "targetUserId": ("target_user", True),
            "userId": ("self_user", True),
            "signal": ("signal", True),
        }
    ),
    "chat-message": Spec({"message": ("chat", True)}),
    "emoji-reaction": Spec({"emoji": ("emoji", True)}),
    "media-state": Spec(
        {"audio": ("bool", False), "video": ("bool", False), "screen": ("bool", False)},
        at_least_one=True,
    ),
    "raise-hand": Spec({"raised": ("bool", True)}),
    "local-recording": Spec({"recording": ("bool", True)}),
    "recording-start": Spec({"layout": ("layout", False)}, none_ok=True),
    "recording-stop": Spec({}, none_ok=True),
    "sfu-publish": Spec({"description": ("offer", True), "sources": ("sources", False)}),
    "sfu-subscribe-answer": Spec({"session": ("session", False), "description": ("answer", True)}),
    "sfu-candidate": Spec({"target": ("target", True), "candidate": ("candidate", True)}),
    "sfu-view": Spec({"views": ("views", True)}),
    "sfu-unpublish": Spec({}, none_ok=True),
    "sfu-subscribe": Spec({}, none_ok=True),
    # Moderation (#13): the attacker is the room's moderator, so only the payload stops it.
    "set-role": Spec({"userId": ("participant", True), "role": ("role", True)}),
    "mute-participant": Spec({"userId": ("participant", True), "kind": ("mute_kind", True)}),
    "stop-screen-share": Spec({"userId": ("participant", True)}),
    "remove-participant": Spec({"userId": ("participant", True), "reason": ("reason", False)}),
    "lock-room": Spec({"locked": ("bool", True)}),
    "end-meeting": Spec({}, none_ok=True),
    "lobby-admit": Spec({"requestId": ("request", True)}),
    "lobby-deny": Spec({"requestId": ("request", True), "reason": ("reason", False)}),
}
EVENTS = list(SPECS)


def base_payload(event: str, w: World, sender: str) -> dict[str, Any]:
    """A payload the server accepts (the fault comes on top)."""
    joiner = NEWBIE if sender == "stranger" else ATTACKER
    return {
        "join-room": {
            "roomId": FRESH_ROOM if sender == "stranger" else ROOM,
            "userId": joiner,
            "userName": joiner.title(),
            "mode": w.mode,
            "media": {"audio": True, "video": False},
            "roomName": "Weekly design review",
        },
        "leave-room": {},
        "signal-send": {"targetUserId": PEER, "userId": ATTACKER, "signal": dict(SIGNAL)},
        "chat-message": {"message": "hello"},
        "emoji-reaction": {"emoji": "\U0001f389"},
        "media-state": {"audio": True},
        "raise-hand": {"raised": True},
        "local-recording": {"recording": True},
        "recording-start": {"layout": "grid"},
        "recording-stop": {},
        "sfu-publish": {
            "description": {"type": "offer", "sdp": w.offer_sdp},
            "sources": {"0": "microphone"},
        },
        "sfu-subscribe-answer": {
            "session": w.session,
            "description": {"type": "answer", "sdp": w.answer_sdp},
        },
        "sfu-candidate": {"target": "publish", "candidate": dict(CANDIDATE)},
        "sfu-view": {"views": [dict(VIEW)]},
        "sfu-unpublish": {},
        "sfu-subscribe": {},
        "set-role": {"userId": PEER, "role": "moderator"},
        "mute-participant": {"userId": PEER, "kind": "audio"},
        "stop-screen-share": {"userId": PEER},
        "remove-participant": {"userId": PEER, "reason": "spam"},
        "lock-room": {"locked": True},
        "end-meeting": {},
        # No knock waits in the fuzzed room: every fault is refused before the lookup too.
        "lobby-admit": {"requestId": "knock"},
        "lobby-deny": {"requestId": "knock", "reason": "no"},
    }[event]


# Plain JSON that any parser takes (Hypothesis' text() has no surrogates by default).
LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JSON = st.recursive(
    LEAF,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)
NON_STR = st.one_of(
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(LEAF, max_size=3),
    st.dictionaries(st.text(max_size=6), LEAF, max_size=3),
)
NON_BOOL = st.one_of(
    st.integers(-(10**30), 10**30),  # 0 and 1 included: strict types
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    st.lists(LEAF, max_size=3),
    st.dictionaries(st.text(max_size=6), LEAF, max_size=3),
)
NON_OBJECT = st.one_of(
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.lists(JSON, max_size=4),
)
NON_LIST = st.one_of(
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.dictionaries(st.text(max_size=6), LEAF, max_size=3),
)
VIEW = {"mid": "0", "height": 360, "visible": True}
# A view with one field the server refuses (sfu-view: docs/sfu.md).
BAD_VIEW = st.one_of(
    NON_OBJECT.filter(lambda v: not isinstance(v, dict)),
    st.builds(lambda m: {**VIEW, "mid": m}, NON_STR),
    st.builds(lambda h: {**VIEW, "height": h}, st.one_of(st.text(max_size=5), st.booleans())),
    st.builds(
        lambda h: {**VIEW, "height": h},
        st.one_of(st.integers(max_value=-1), st.integers(min_value=20001)),
    ),
    # (Any float: heights are whole pixels, and JSON's 360.0 is not an integer.)
    st.builds(lambda h: {**VIEW, "height": h}, st.floats(allow_nan=False, allow_infinity=False)),
    st.builds(lambda v: {**VIEW, "visible": v}, NON_BOOL),
    st.builds(
        lambda p: {**VIEW, "preference": p},
        st.text(max_size=8).filter(lambda t: t not in ("auto", "low")),
    ),
)
NON_INT = st.one_of(
    st.text(max_size=10),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != int(f)),
    st.lists(LEAF, max_size=3),
    st.dictionaries(st.text(max_size=6), LEAF, max_size=3),
)
ID_CHARS = string.ascii_letters + string.digits + "_-"
VALID_ID = st.text(ID_CHARS, min_size=1, max_size=20)
# Characters no id may hold; "\n" at the end matters: a regex "$" lets it through.
BAD_ID_CHAR = st.sampled_from(["\n", " ", "/", ".", "\u00e9", "\x00", "<", "\t", "%"]) | (
    st.characters(codec="utf-8").filter(lambda c: c not in ID_CHARS)
)
CONTROL_ONLY = st.text(
    st.characters(categories=["Cc", "Cf"], exclude_characters="\u200d", codec="utf-8"),
    min_size=1,
    max_size=8,
)
BLANK = st.text(" \t\n\r\u00a0\u2003\u3000", max_size=6)
PLAIN = string.ascii_letters + string.digits


@st.composite
def bad_ident(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["empty", "long", "char"]))
    if kind == "empty":
        return ""
    if kind == "long":
        return draw(st.text(ID_CHARS, min_size=65, max_size=300))
    ident, bad = draw(VALID_ID), draw(BAD_ID_CHAR)
    at = draw(st.sampled_from([len(ident), 0, len(ident) // 2]))
    return ident[:at] + bad + ident[at:]


def bad_text(max_length: int) -> st.SearchStrategy[str]:
    """Empty once cleaned (blank, only control characters), or longer than the limit."""
    return st.one_of(
        BLANK,
        CONTROL_ONLY,
        st.builds(lambda a, b: a + b, BLANK, CONTROL_ONLY),
        st.text(PLAIN, min_size=max_length + 1, max_size=max_length + 200),
    )


def bad_room_name() -> st.SearchStrategy[str]:
    """A meeting name with a control character anywhere (refused, not stripped), or longer
    than ``limits.room_name_max_length`` (100). Blank is fine: unnamed."""
    return st.one_of(
        CONTROL_ONLY,
        st.builds(
            lambda a, c, b: a + c + b,
            st.text(PLAIN, max_size=8),
            CONTROL_ONLY,
            st.text(PLAIN, max_size=8),
        ),
        st.text(PLAIN, min_size=101, max_size=300),
    )


def not_one_of(allowed: tuple[str, ...]) -> st.SearchStrategy[Any]:
    return st.text(max_size=12).filter(lambda s: s not in allowed) | NON_STR


def bad_description(expected: str, good_sdp: str) -> st.SearchStrategy[Any]:
    other = "answer" if expected == "offer" else "offer"
    return st.one_of(
        NON_OBJECT,
        st.just({"type": other, "sdp": good_sdp}),
        st.just({"type": expected}),
        st.just({"sdp": good_sdp}),
        st.builds(
            lambda s: {"type": expected, "sdp": s},
            st.text(max_size=40).filter(lambda s: not s.startswith("v=")),
        ),
        st.builds(lambda s: {"type": expected, "sdp": s}, NON_STR),
        st.builds(lambda t: {"type": t, "sdp": good_sdp}, not_one_of((expected,))),
        # Looks like SDP, is not: the parser and aiortc must refuse it cleanly.
        st.builds(lambda s: {"type": expected, "sdp": "v=0\r\n" + s}, st.text(max_size=200)),
    )


BAD_CANDIDATE_TEXT = st.sampled_from(
    [
        "garbage",
        "candidate:",
        "candidate:1 1 udp",
        "candidate:a b c d e f typ host",
        "a=candidate:x",
    ]
) | st.text(st.characters(codec="utf-8").filter(lambda c: not c.isspace()), min_size=1, max_size=30)


def wrong_type(kind: str, required: bool) -> st.SearchStrategy[Any]:
    """A value whose JSON type the field does not take (null only where it is required)."""
    null = [st.none()] if required else []
    if kind == "bool":
        return st.one_of(NON_BOOL, *null)
    if kind in ("signal", "offer", "answer", "candidate", "media", "sources"):
        return st.one_of(NON_OBJECT, *null)
    if kind == "session":
        return st.one_of(NON_INT, *null)
    if kind == "views":
        return st.one_of(NON_LIST, *null)
    return st.one_of(NON_STR, *null)


def bad_value(kind: str, w: World) -> st.SearchStrategy[Any] | None:
    """A value of the right type that the field does not accept."""
    return {
        "ident": bad_ident(),
        "name": bad_text(64),
        "room_name": bad_room_name(),
        "chat": bad_text(2000),
        "emoji": bad_text(16),
        "mode": not_one_of(("p2p", "sfu")),
        "access": not_one_of(("open", "password", "token")),
        "password": st.one_of(st.just(""), st.text(PLAIN, min_size=129, max_size=300)),
        "participant": st.one_of(st.just("nobody"), st.just(BYSTANDER), bad_ident()),
        "role": not_one_of(("moderator", "participant")),
        "mute_kind": not_one_of(("audio", "video")),
        "reason": bad_text(200),
        "request": st.one_of(st.just("nobody"), st.text(max_size=30)),
        "layout": not_one_of(LAYOUTS),
        "target": not_one_of(("publish", "subscribe")),
        "target_user": st.one_of(st.just(ATTACKER), st.just("nobody"), bad_ident()),
        "self_user": st.one_of(st.just(PEER), st.just("nobody"), bad_ident()),
        "media": st.dictionaries(
            st.sampled_from(["audio", "video", "screen"]), NON_BOOL, min_size=1
        ),
        "sources": st.dictionaries(st.text(max_size=8), not_one_of(SOURCES), min_size=1),
        "offer": bad_description("offer", w.offer_sdp),
        "answer": bad_description("answer", w.answer_sdp),
        "session": st.one_of(st.integers(-(10**30), -1), st.integers(10**6, 10**30)),
        "views": st.one_of(
            st.lists(BAD_VIEW, min_size=1, max_size=3),
            st.lists(st.just(dict(VIEW)), min_size=201, max_size=203),  # over the limit
        ),
        "candidate": st.one_of(
            st.just({}),
            st.builds(lambda c: {**CANDIDATE, "candidate": c}, NON_STR),
            st.builds(lambda c: {**CANDIDATE, "candidate": c}, BAD_CANDIDATE_TEXT),
        ),
    }.get(kind)


# What JSON cannot carry (the contract: refused with invalid_payload).
LONE_SURROGATES = st.sampled_from(["\ud800", "\udfff", "a\ud83db", "\udc00\ud800", "x\udbff"])
HOSTILE = st.one_of(
    st.sampled_from([Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e999"), Raw("-1E400")]),
    st.builds(
        lambda sign, n: Raw(sign + "7" * n), st.sampled_from(["", "-"]), st.integers(33, 120)
    ),
    st.builds(
        lambda d, obj: Raw('{"a":' * d + "0" + "}" * d if obj else "[" * d + "]" * d),
        st.sampled_from([33, 34, 40, 64, 500, 3000]),
        st.booleans(),
    ),
    LONE_SURROGATES,
    st.builds(lambda s: {s: 1}, LONE_SURROGATES),  # as a key
)


@dataclass
class Case:
    """One faulted payload: what is sent and what may come back."""

    payload: Any  # ABSENT: the event carries no argument
    fault: str
    hostile: bool = False  # JSON cannot carry it: invalid_payload only
    binary: list[bytes] | None = None

    def text(self, event: str) -> str:
        return dumps([event] if self.payload is ABSENT else [event, self.payload])


ABSENT = object()


@st.composite
def faulted(draw: st.DrawFn, event: str, w: World, sender: str) -> Case:
    spec = SPECS[event]
    payload = base_payload(event, w, sender)
    present = [name for name in spec.fields if name in payload]
    faults = ["hostile", "binary", "oversize"]
    if spec.fields:
        faults.append("wrong_type")
    if any(bad_value(kind, w) is not None for kind, _ in spec.fields.values()):
        faults.append("bad_value")
    if any(req for _, req in spec.fields.values()):
        faults.append("missing")
    if spec.object_required:
        faults.append("non_object")
    if spec.at_least_one:
        faults.append("empty")
    fault = draw(st.sampled_from(faults))

    def extras() -> dict[str, Any]:
        return draw(
            st.dictionaries(
                st.text(max_size=10).filter(lambda k: k not in spec.fields), JSON, max_size=3
            )
        )

    if fault == "non_object":
        values = st.one_of(NON_OBJECT, st.none()) if not spec.none_ok else NON_OBJECT
        return Case(draw(values), fault)
    if fault == "empty":
        return Case({**extras(), **draw(st.sampled_from([{}, {"audio": None}]))}, fault)
    if fault == "wrong_type":
        name = draw(st.sampled_from(list(spec.fields)))
        kind, required = spec.fields[name]
        payload[name] = draw(wrong_type(kind, required))
        return Case({**extras(), **payload}, f"wrong_type:{name}")
    if fault == "bad_value":
        name = draw(
            st.sampled_from([n for n, (k, _) in spec.fields.items() if bad_value(k, w) is not None])
        )
        payload[name] = draw(bad_value(spec.fields[name][0], w))  # type: ignore[arg-type]
        return Case({**extras(), **payload}, f"bad_value:{name}")
    if fault == "missing":
        name = draw(st.sampled_from([n for n, (_, req) in spec.fields.items() if req]))
        payload.pop(name, None)
        return Case({**extras(), **payload}, f"missing:{name}")
    if fault == "oversize":
        big = "x" * draw(st.integers(MAX_PAYLOAD + 1, 2 * MAX_PAYLOAD))
        name = draw(st.sampled_from([*present, "padding"]))
        payload[name] = big
        return Case(payload, f"oversize:{name}")

    # hostile or binary: somewhere in an otherwise valid payload (or as the payload itself).
    value: Any
    binary = None
    if fault == "binary":
        value = {"_placeholder": True, "num": 0}
        binary = [draw(st.binary(max_size=64))]
    else:
        value = draw(HOSTILE)
    nests = [n for n in present if isinstance(payload[n], dict)]
    where = draw(st.sampled_from(["field", "extra", "payload", *(["nested"] if nests else [])]))
    if where == "payload":
        return Case(value, f"{fault}:payload", hostile=True, binary=binary)
    if where == "nested":
        name = draw(st.sampled_from(nests))
        payload[name] = {**payload[name], draw(st.text(max_size=6)): value}
    else:
        name = draw(st.sampled_from(present)) if where == "field" and present else "extra"
        payload[name] = value
    return Case({**extras(), **payload}, f"{fault}:{where}:{name}", hostile=True, binary=binary)


# -- running one example ---------------------------------------------------------------------
class Silence:
    """No ack came."""

    def __init__(self, why: str) -> None:
        self.why = why

    def __repr__(self) -> str:
        return f"<no ack: {self.why}>"


async def send(sender: RawSocketIO, event: str, case: Case) -> list[Any] | Silence:
    """Emits the case and waits for its ack.

    A barrier event right behind it tells silence from slowness: once the server has answered
    the barrier, a missing answer is not coming (keeps failing examples quick to shrink).
    """
    ack_id = sender.next_id()
    head = f"45{len(case.binary)}-" if case.binary is not None else "42"
    await sender.send_text(f"{head}{ack_id}{case.text(event)}")
    for attachment in case.binary or []:
        await sender.send_binary(attachment)
    barrier = await sender.emit("zz-barrier")
    assert barrier is not None
    try:
        return await sender.wait_ack(ack_id, timeout=1.0)
    except AckTimeout:
        pass
    with contextlib.suppress(AckTimeout):
        await sender.wait_ack(barrier, timeout=3.0)
    try:
        return await sender.wait_ack(ack_id, timeout=0.5)
    except AckTimeout as exc:
        return Silence(str(exc))


def delivered(client: RawSocketIO, since: int) -> list[tuple[str | None, list[Any]]]:
    return [(e, a) for e, a in client.events(since=since) if e not in AMBIENT]


async def check_refused(
    w: World, event: str, case: Case, caplog: pytest.LogCaptureFixture, sender: RawSocketIO
) -> None:
    await w.ensure()
    before = server_snapshot(w.running)
    marks = [c.mark() for c in w.watchers]
    attacker_mark = sender.mark()
    first_record = len(caplog.records)

    answer = await send(sender, event, case)
    await asyncio.gather(*(c.barrier() for c in w.watchers))

    assert not isinstance(answer, Silence), f"{event} {case.fault}: {answer!r}"
    assert len(answer) == 1, f"{event} {case.fault}: ack with {len(answer)} arguments: {answer!r}"
    allowed = None
    if case.hostile:
        allowed = {"invalid_payload"}
        if len(case.text(event).encode()) > MAX_PAYLOAD:
            allowed.add("payload_too_large")
    assert_refusal(answer[0], allowed=allowed)
    for client, mark in zip(w.watchers, marks, strict=True):
        got = delivered(client, mark)
        assert not got, f"{event} {case.fault}: a refused event delivered {got!r:.300}"
    # The sender gets no event either (a chat echo, a subscribe offer ...).
    echoed = delivered(sender, attacker_mark)
    assert not echoed, f"{event} {case.fault}: the sender received {echoed!r:.300}"
    assert server_snapshot(w.running) == before, f"{event} {case.fault} changed the state"
    logged = tracebacks(caplog.records[first_record:])
    assert not logged, f"{event} {case.fault}: traceback logged: {logged}"
    bad = [v for c in w.clients for v in c.violations]
    assert not bad, f"{event} {case.fault}: unparseable frames: {bad[:3]}"


# -- the tests -------------------------------------------------------------------------------
@pytest.mark.parametrize("event", EVENTS)
@given(data=st.data())
async def test_malformed_payload_is_refused_and_changes_nothing(
    world: World, event: str, caplog: pytest.LogCaptureFixture, data: st.DataObject
) -> None:
    caplog.set_level(logging.INFO)
    who = (
        data.draw(st.sampled_from(["attacker", "stranger"])) if event == "join-room" else "attacker"
    )
    case = data.draw(faulted(event, world, who), label="case")
    sender = world.attacker if who == "attacker" else world.stranger
    await check_refused(world, event, case, caplog, sender)


VISIBLE = st.text(PLAIN + " \u00e9\u4e2d\U0001f600", min_size=1, max_size=20).filter(str.strip)
NOISE = st.text(st.characters(categories=["Cc", "Cf", "Zs"], codec="utf-8"), min_size=1, max_size=6)


def _clean(text: str, keep: str = "") -> bool:
    return not any(
        unicodedata.category(ch) in ("Cc", "Cf") and ch not in keep + "\u200d" for ch in text
    )


@given(data=st.data())
async def test_text_reaches_others_without_control_characters(
    world: World, caplog: pytest.LogCaptureFixture, data: st.DataObject
) -> None:
    """Control characters in a chat message or a name are stripped, never relayed."""
    caplog.set_level(logging.INFO)
    await world.ensure()
    parts = data.draw(st.lists(st.one_of(VISIBLE, NOISE), min_size=1, max_size=5))
    text = "".join(parts)
    seen = len(world.peer.events("chat-message"))
    ack = await world.attacker.call("chat-message", {"message": text})
    if ack.get("ok"):
        got = (await world.peer.wait_event("chat-message", seen + 1))[-1]
        assert _clean(got["message"], keep="\n"), f"relayed {got['message']!r}"
        assert got["message"] == got["message"].strip() != ""
    else:
        assert_refusal(ack, allowed={"invalid_payload"})
    assert not tracebacks(caplog.records)


async def check_accepted(w: World, event: str) -> None:
    """The positive control: a valid payload of ``event`` is accepted and has its effect."""
    a, p, sfu = w.attacker, w.peer, w.mode == "sfu"
    if event.startswith("sfu-") and not sfu:
        # A P2P room has no router while it is not recorded (#19).
        payload = base_payload(event, w, "attacker")
        assert (await a.call(event, payload))["error"] == "not_sfu_room"
        return
    if event == "join-room":
        ack = await w.stranger.call("join-room", base_payload(event, w, "stranger"))
        assert ack["ok"] and ack["roomId"] == FRESH_ROOM and ack["isCreator"] is True, ack
    elif event == "leave-room":
        assert (await a.call("leave-room", {}))["ok"]
        assert await p.wait_event("user-left") == [{"userId": ATTACKER}]
    elif event == "signal-send":
        assert (await a.call(event, base_payload(event, w, "attacker")))["ok"]
        assert await p.wait_event("signal-receive") == [{"userId": ATTACKER, "signal": SIGNAL}]
    elif event == "chat-message":
        ack = await a.call(event, {"message": " hello \x00"})
        assert ack["ok"], ack
        [got] = await p.wait_event("chat-message")
        assert got["message"] == "hello" and got["userId"] == ATTACKER
    elif event == "emoji-reaction":
        assert (await a.call(event, {"emoji": "\U0001f389"}))["ok"]
        [got] = await p.wait_event("emoji-reaction")
        assert got["emoji"] == "\U0001f389"
    elif event == "media-state":
        ack = await a.call(event, {"video": True})
        assert ack["ok"] and ack["media"] == {"audio": False, "video": True, "screen": False}
        [got] = await p.wait_event("media-state")
        assert got["userId"] == ATTACKER and got["media"]["video"] is True
    elif event == "raise-hand":
        ack = await a.call(event, {"raised": True})
        assert ack["ok"] and ack["raised"] is True and isinstance(ack["at"], int), ack
        [got] = await p.wait_event("hand-raised")
        assert got == {"userId": ATTACKER, "raised": True, "at": ack["at"]}
    elif event == "local-recording":
        ack = await a.call(event, {"recording": True})
        assert ack["ok"] and ack["recording"] is True, ack
        [got] = await p.wait_event("local-recording")
        assert got == {"userId": ATTACKER, "recording": True}
    elif event == "recording-start":
        ack = await a.call(event, {"layout": "speaker"})
        assert ack["ok"] and ack["recordingId"], ack
        [state] = await p.wait_event("recording-state")
        assert state["recording"] is True and state["layout"] == "speaker"
        await w.running.server.recordings.stop(ROOM)
    elif event == "recording-stop":
        assert (await a.call("recording-start", {}))["ok"]
        ack = await a.call(event, {}, timeout=30)
        assert ack["ok"] and ack["recordingId"], ack
    elif event == "sfu-publish":
        ack = await a.call(event, base_payload(event, w, "attacker"))
        assert ack["ok"] and ack["description"]["type"] == "answer", ack
        assert [t["active"] for t in ack["tracks"]] == [True]
    elif event == "sfu-subscribe-answer":
        media = w.media[ATTACKER]
        answered = len(media.answers)
        assert (await a.call("sfu-subscribe", {}))["ok"]
        for _ in range(200):
            if len(media.answers) > answered:
                break
            await asyncio.sleep(0.05)
        assert media.answers[answered:] and media.answers[answered]["ok"], media.answers
    elif event == "sfu-candidate":
        assert (await a.call(event, base_payload(event, w, "attacker")))["ok"]
        end = {"target": "subscribe", "candidate": {"candidate": "", "sdpMid": "0"}}
        assert (await a.call(event, end))["ok"]
    elif event == "sfu-view":
        assert (await a.call(event, base_payload(event, w, "attacker"))) == {"ok": True}
    elif event == "sfu-unpublish":
        router = w.running.server.rooms.rooms[ROOM].router
        assert any(k.startswith(f"{ATTACKER}/") for k in router.producers)
        assert (await a.call(event, {}))["ok"]
        assert not any(k.startswith(f"{ATTACKER}/") for k in router.producers)
    elif event == "sfu-subscribe":
        offers = len(a.events("sfu-subscribe-offer"))
        assert (await a.call(event))["ok"]
        await a.wait_event("sfu-subscribe-offer", offers + 1)
    elif event in MODERATION_EFFECT:
        heard, expected = MODERATION_EFFECT[event]
        ack = await a.call(event, base_payload(event, w, "attacker"))
        assert ack["ok"], ack
        [got] = await p.wait_event(heard)
        assert expected.items() <= got.items(), got
        [told] = await a.wait_event("moderation")  # the room hears (the removed does not)
        assert told["by"] == ATTACKER, told
    elif event in ("lobby-admit", "lobby-deny"):
        assert (await a.call("lock-room", {"locked": True}))["ok"]
        knock = await w.stranger.call(
            "join-room", base_payload("join-room", w, "stranger") | {"roomId": ROOM}
        )
        assert knock["ok"] and knock["lobby"], knock
        ack = await a.call(event, {"requestId": knock["requestId"]})
        assert ack["ok"], ack
        reply = "lobby-admitted" if event == "lobby-admit" else "lobby-denied"
        [got] = await w.stranger.wait_event(reply)
        assert got["requestId"] == knock["requestId"]
    else:  # pragma: no cover - a new event needs its control
        raise AssertionError(f"no positive control for {event}")


# The positive controls of the moderation events: what the target (PEER) hears.
MODERATION_EFFECT: dict[str, tuple[str, dict[str, Any]]] = {
    "set-role": ("role-changed", {"userId": PEER, "role": "moderator", "by": ATTACKER}),
    "mute-participant": ("mute-requested", {"kind": "audio", "by": ATTACKER}),
    "stop-screen-share": ("screen-share-stop-requested", {"by": ATTACKER}),
    "remove-participant": ("removed", {"by": ATTACKER, "reason": "spam"}),
    "lock-room": ("room-locked", {"locked": True, "by": ATTACKER}),
    "end-meeting": ("room-closed", {"reason": "ended", "by": ATTACKER}),
}


@pytest.mark.parametrize("event", EVENTS)
async def test_valid_payload_is_accepted(
    world: World, event: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await check_accepted(world, event)
    assert not tracebacks(caplog.records)
    assert not [v for c in world.clients for v in c.violations]


def documented_client_events() -> set[str]:
    """The client events the docs specify: protocol.md's ``### `name``` headings (not the
    server-to-client ones) and sfu.md's ``#### `name``` under "Client to server"."""
    docs = Path(__file__).resolve().parents[2] / "docs"
    protocol = (docs / "protocol.md").read_text()
    names = set(re.findall(r"^### `([a-z-]+)`\s*$", protocol, flags=re.M))
    sfu = (docs / "sfu.md").read_text().split("### Client to server", 1)[1]
    sfu = sfu.split("### Server to client", 1)[0]
    return names | set(re.findall(r"^#### `([a-z-]+)`", sfu, flags=re.M))


def test_every_client_event_is_fuzzed() -> None:
    """A newly documented client event must get a Spec here (and a positive control)."""
    assert documented_client_events() == set(SPECS)


def test_specs_follow_the_payload_models() -> None:
    """The Specs' fields are the pydantic models' (sfu/validation.py): same names, same
    required ones, so a field added to a model is fuzzed too."""
    models = {
        "join-room": validation.JoinRoomIn,
        "signal-send": validation.SignalSendIn,
        "chat-message": validation.ChatMessageIn,
        "emoji-reaction": validation.EmojiReactionIn,
        "media-state": validation.MediaIn,
        "raise-hand": validation.RaiseHandIn,
        "local-recording": validation.LocalRecordingIn,
    }
    for event, model in models.items():
        fields = {name: info.is_required() for name, info in model.model_fields.items()}
        assert fields == {n: req for n, (_, req) in SPECS[event].fields.items()}, event
