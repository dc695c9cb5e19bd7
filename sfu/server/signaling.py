"""Socket.IO events: the architecture guide's signaling protocol, plus chat, emoji and media state.

Thin by design: every handler validates its input, asks the room registry, and shapes the
reply. Each event is acknowledged with ``{"ok": true, ...}`` or
``{"ok": false, "error": CODE, "message": ...}``; a refused event changes nothing.

``join-room`` is also the door (docs/security.md): join tokens, room passwords (rate-limited
per address and per room), removal bans and the lobby of locked rooms are checked here before
the registry adds anyone; chat, media state and P2P signaling check the sender's grants.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import socketio

from sfu.access import passwords, tokens
from sfu.access.grants import DEFAULT, offered_sources
from sfu.access.tokens import JoinToken
from sfu.media import turn
from sfu.metrics import Metrics
from sfu.ratelimit import KeyedBuckets, TokenBucket
from sfu.refusal import Refusal
from sfu.rooms import Knock, MediaState, Participant, Room, RoomRegistry, stricter
from sfu.server.http_edge import client_address, origin_allowed, request_scheme
from sfu.server.socketio_server import SocketServer
from sfu.settings import Settings
from sfu.validation import (
    ChatMessageIn,
    EmojiReactionIn,
    JoinRoomIn,
    Limits,
    LocalRecordingIn,
    MediaIn,
    RaiseHandIn,
    SignalSendIn,
    parse,
)

log = logging.getLogger("sfu.server.signaling")

Handler = Callable[[str, Any], Awaitable[dict[str, Any] | None]]
# Rate-limit buckets: every client event belongs to one; unknown events take from "other".
BUCKETS = ("chat", "emoji", "signal", "other")
# Names python-socketio and socket.io-client give a meaning of their own: never a client event.
RESERVED = frozenset({"connect", "disconnect", "connect_error", "disconnecting", "message", "*"})
REFUSAL_LOG_SECONDS = 10.0  # a socket's refusals of one kind are logged once per interval
ADMIT_ATTEMPTS = 3  # a room created or deleted while a join awaited its password check


@dataclass
class Connection:
    """What the server keeps per socket, from connect to disconnect (not per join)."""

    address: str
    eio_sid: str | None = None
    # The node the socket is on when it is another one (a cluster's relay, sfu/cluster).
    node: str | None = None
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    # code -> [when last logged (monotonic), refusals not logged since]
    refusals: dict[str, list[float]] = field(default_factory=dict)


class Signaling:
    """The Socket.IO server and its event handlers."""

    def __init__(self, settings: Settings, rooms: RoomRegistry, metrics: Metrics) -> None:
        self.settings = settings
        self.rooms = rooms
        self.metrics = metrics
        self.limits = Limits(settings.limits)
        extra: dict[str, Any] = {}
        if settings.server.redis_url is not None:  # emits reach sockets on every node
            extra["client_manager"] = socketio.AsyncRedisManager(
                settings.server.redis_url.get_secret_value(),
                channel="sfu:socketio",
                redis_options={"socket_connect_timeout": 1, "health_check_interval": 10},
            )
        self.sio = SocketServer(
            dispatch=self._dispatch,
            refused=self._refused_raw,
            max_depth=lambda: settings.limits.max_json_depth,
            max_payload_bytes=settings.limits.max_payload_bytes,
            address_of=self._address_of,
            max_per_address=lambda: settings.limits.max_sockets_per_address,
            async_mode="aiohttp",
            cors_allowed_origins=self._origin_allowed,
            # Engine.IO drops a connection over this size; the gate answers with an error for
            # anything between max_payload_bytes and this.
            max_http_buffer_size=4 * settings.limits.max_payload_bytes + 4096,
            # A frozen browser (lid closed, process stopped) must free its slot quickly.
            ping_interval=settings.server.ping_interval_seconds,
            ping_timeout=settings.server.ping_timeout_seconds,
            **extra,
        )
        self.connections: dict[str, Connection] = {}
        self._by_eio: dict[str, str] = {}  # eio sid -> sid, for refusals before an event
        self._unattributed: dict[str, list[float]] = {}  # refusals of no connected socket
        self._events: dict[str, tuple[str, Handler]] = {}
        # SFU media events are handed to the room's router (set by the media layer).
        self.sfu_events: set[str] = set()
        # Awaited with (room, participant) after a join or a leave (the media layer subscribes).
        self.on_join: list[Callable[[Room, Participant], Awaitable[None]]] = []
        self.on_leave: list[Callable[[Room, Participant], Awaitable[None]]] = []
        # Each adds fields to the join-room answer (e.g. the recording state and token).
        self.join_extras: list[Callable[[Room, Participant], dict[str, Any]]] = []
        # A cluster (sfu/server/cluster_events.py): ``forward`` answers an event for a room
        # on another node (None: handle it here); ``before_join`` brings a room here from the
        # directory; ``on_disconnect`` hears of every socket of this node that went away.
        self.forward: Callable[[str, str, Any], Awaitable[dict[str, Any] | None]] | None = None
        self.before_join: Callable[[str], Awaitable[None]] | None = None
        self.on_disconnect: list[Callable[[str], Awaitable[None]]] = []
        # sid -> the task that pushes fresh TURN credentials before the minted ones expire.
        self._ice_renewals: dict[str, asyncio.Task[None]] = {}
        # Wrong passwords and bad join tokens, per client address and per room.
        # A minute's worth at once, then the per-minute rate.
        n = settings.limits.password_attempts_per_minute
        self.wrong_by_address = KeyedBuckets(n / 60, n)
        self.wrong_by_room = KeyedBuckets(n * 10 / 60, n * 10)
        # The lobby: sid -> its knock's (room id, request id); request id -> its timeout.
        self._knocks: dict[str, tuple[str, str]] = {}
        self._knock_timers: dict[str, asyncio.Task[None]] = {}
        self._closing_tells: set[asyncio.Future[None]] = set()
        rooms.on_room_deleted.append(self._room_deleted)
        self.ice_renew_fraction = turn.RENEW_FRACTION  # of ice.turn_ttl_seconds
        # Lifecycle only: client packets never reach python-socketio's handlers (the gate).
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        for name, bucket, handler in (
            ("join-room", "other", self._join_room),
            ("leave-room", "other", self._leave_room),
            ("signal-send", "signal", self._signal_send),
            ("chat-message", "chat", self._chat_message),
            ("emoji-reaction", "emoji", self._emoji_reaction),
            ("media-state", "other", self._media_state),
            ("raise-hand", "other", self._raise_hand),
            ("local-recording", "other", self._local_recording),
        ):
            self.register_event(name, bucket, handler)

    # -- plumbing --------------------------------------------------------------------------
    def _address_of(self, environ: dict[str, Any]) -> str:
        # Engine.IO's own REMOTE_ADDR is always 127.0.0.1 under aiohttp: ask the request.
        request = environ.get("aiohttp.request")
        return client_address(request, self.settings) if request is not None else "?"

    def _origin_allowed(self, origin: str | None, environ: dict[str, Any]) -> bool:
        # Engine.IO's own url_scheme believes any client's X-Forwarded-Proto: not used.
        request = environ.get("aiohttp.request")
        if request is None:
            return origin is None
        host = request.headers.get("Host", "")
        scheme = request_scheme(request, self.settings)
        return origin_allowed(origin, host, scheme, self.settings)

    def _bucket(self, connection: Connection, name: str) -> TokenBucket:
        bucket = connection.buckets.get(name)
        s = self.settings.limits
        rate, burst = {
            "chat": (s.chat_per_second, s.chat_burst),
            "emoji": (s.emoji_per_second, s.emoji_burst),
            "signal": (s.signal_per_second, s.signal_burst),
            "other": (s.other_per_second, s.other_burst),
        }[name]
        if bucket is None:
            bucket = connection.buckets[name] = TokenBucket(rate, burst)
        else:  # limits can change at run time
            bucket.rate, bucket.burst = rate, burst
        return bucket

    def register_sfu_event(self, name: str, handler: Handler) -> None:
        """Adds an ``sfu-*`` event handled by the media layer, guarded like every other."""
        self.sfu_events.add(name)
        self.register_event(name, "signal", handler)

    def register_event(self, name: str, bucket: str, handler: Handler) -> None:
        """Adds a client event, answered through the one guard (limits, refusals, answers)."""
        assert name not in RESERVED and bucket in BUCKETS
        self._events[name] = (bucket, handler)

    async def handle_relayed(self, sid: str, event: Any, data: Any) -> dict[str, Any]:
        """Answers an event another node relayed for one of its sockets (its ``Connection``
        has ``node`` set): through the same guard, never forwarded again."""
        return await self._dispatch(sid, event, data, None, relayed=True)

    def knocking(self, sid: str) -> bool:
        return sid in self._knocks

    async def _dispatch(
        self, sid: str, event: Any, data: Any, problem: Refusal | None, relayed: bool = False
    ) -> dict[str, Any]:
        """Answers one client event: every event, known or not, well-formed or not, comes here."""
        spec = self._events.get(event) if isinstance(event, str) else None
        name = event if spec is not None else "unknown"  # bounded metric labels
        connection = self.connections.get(sid)
        try:
            if connection is None:  # disconnected while the packet was in flight
                raise Refusal("not_connected", "not connected")
            if not self._bucket(connection, spec[0] if spec else "other").allow():
                raise Refusal("rate_limited", f"too many {name} events; slow down")
            if problem is not None:
                raise problem
            if spec is None:
                raise Refusal("unknown_event", _unknown_reason(event))
            if self.forward is not None and not relayed:
                answer = await self.forward(sid, name, data)
                if answer is not None:  # the room's node answered (refusals included)
                    self.metrics.events.labels(name, "relayed").inc()
                    return answer
            result = await spec[1](sid, data)
        except Refusal as exc:
            return self._refuse(sid, connection, name, exc.code, exc.message)
        except Exception:
            self.metrics.events.labels(name, "internal_error").inc()
            log.exception("error handling %s from %s", name, sid)
            return {"ok": False, "error": "internal_error", "message": "internal server error"}
        if result and result.get("ok") is False:  # a lower layer's own refusal
            return self._refuse(
                sid, connection, name, str(result.get("error")), str(result.get("message"))
            )
        self.metrics.events.labels(name, "ok").inc()
        return {"ok": True, **(result or {})}

    def _refuse(
        self, sid: str, connection: Connection | None, name: str, code: str, message: str
    ) -> dict[str, Any]:
        self.metrics.events.labels(name, code).inc()
        log_key = f"{name}:{code}"
        self._log_refusal(
            connection.refusals if connection else self._unattributed,
            log_key,
            "refused %s from %s: %s (%s)",
            name,
            sid,
            code,
            message[:200],
        )
        return {"ok": False, "error": code, "message": message}

    def _refused_raw(self, eio_sid: str, kind: str, detail: str) -> None:
        """A message refused before it named an event (binary frame, unreadable packet)."""
        self.metrics.events.labels("packet", kind).inc()
        sid = self._by_eio.get(eio_sid)
        connection = self.connections.get(sid) if sid else None
        self._log_refusal(
            connection.refusals if connection else self._unattributed,
            f"packet:{kind}",
            "refused a packet from %s: %s (%s)",
            sid or eio_sid,
            kind,
            detail,
        )

    def _log_refusal(self, seen: dict[str, list[float]], key: str, fmt: str, *args: Any) -> None:
        """Logs a refusal once per kind per socket per interval, with the count it stood for."""
        now = time.monotonic()
        if key not in seen and len(seen) >= 256:  # bounded: past it, one entry per kind
            key = key.split(":", 1)[0] + ":*"
        entry = seen.get(key)
        if entry is not None and now - entry[0] < REFUSAL_LOG_SECONDS:
            entry[1] += 1
            return
        if entry is not None and entry[1]:
            fmt += " (and %d more like it in the last %.0f s)"
            args = (*args, int(entry[1]), now - entry[0])
        seen[key] = [now, 0]
        log.info(fmt, *args)

    def _need(self, sid: str) -> tuple[Room, Participant]:
        where = self.rooms.locate(sid)
        if where is None:
            raise Refusal("not_in_room", "join a room first")
        return where

    # -- connection ------------------------------------------------------------------------
    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        address = self.sio.address(eio_sid) if eio_sid is not None else "?"
        self.connections[sid] = Connection(address, eio_sid)
        if eio_sid is not None:
            self._by_eio[eio_sid] = sid
        self.metrics.connections.inc()

    async def disconnected(self, sid: str) -> None:
        """A socket is gone (also one of another node's, told by the relay)."""
        await self._disconnect(sid)

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        connection = self.connections.pop(sid, None)
        if connection is None:
            return
        if connection.node is None:
            self.metrics.connections.dec()
        self._by_eio.pop(connection.eio_sid or "", None)
        suppressed = sum(int(n) for _, n in connection.refusals.values())
        if suppressed:
            log.info("%s sent %d more refused events before it left", sid, suppressed)
        await self.cancel_knock(sid)
        await self.depart(sid, why="disconnected")
        for hook in self.on_disconnect:
            await hook(sid)

    async def depart(
        self, sid: str, why: str, keep_room: bool = False, removed: bool = False
    ) -> bool:
        """Takes a socket out of its room; ``keep_room``: a rejoin replaces it (no handover)."""
        renewal = self._ice_renewals.pop(sid, None)
        if renewal is not None:
            renewal.cancel()
        gone = self.rooms.leave(sid, keep_room=keep_room, removed=removed)
        if gone is None:
            return False
        room, participant = gone
        await self.sio.leave_room(sid, room.room_id)
        for hook in self.on_leave:
            await hook(room, participant)
        await self.sio.emit("user-left", {"userId": participant.user_id}, room=room.room_id)
        log.info("user-left %s from %s (%s)", participant.user_id, room.room_id, why)
        if not keep_room and self.rooms.get(room.room_id) is room:
            heir = self.rooms.hand_over(room)
            if heir is not None:
                await self.role_changed(room, heir, None)
        return True

    # -- roles and grants ------------------------------------------------------------------
    def rights(self, room: Room, participant: Participant) -> dict[str, Any]:
        """What the participant may do now: its grants with its role's rights."""
        g = participant.grants
        return {
            "publish": g.publish(),
            "subscribe": g.subscribe,
            "chat": g.chat,
            "record": self.may_record(participant),  # both modes (#19)
            "moderate": participant.is_moderator,
        }

    def may_record(self, participant: Participant) -> bool:
        if self.settings.recording.who_can_record == "anyone":
            return True
        return participant.is_moderator or participant.grants.record

    async def role_changed(self, room: Room, target: Participant, by: Participant | None) -> None:
        """Tells the room of ``target``'s role; a new moderator hears of the lobby."""
        await self.sio.emit(
            "role-changed",
            {
                "userId": target.user_id,
                "role": target.role,
                "by": by.user_id if by else None,
                "grants": self.rights(room, target),
            },
            room=room.room_id,
        )
        if target.is_moderator:
            for knock in room.lobby.values():
                if not knock.admitted:
                    await self.sio.emit("lobby-knock", knock.public(), to=target.sid)

    async def check_media(
        self, room: Room, participant: Participant, event: str, data: Any
    ) -> None:
        """The grants of an ``sfu-*`` event (sfu/server/media_events.py asks before the router)."""
        g = participant.grants
        if event in ("sfu-subscribe", "sfu-subscribe-answer") and not g.subscribe:
            raise Refusal("forbidden", "needs the subscribe grant")
        if event != "sfu-publish":
            return
        if not g.publishes:
            raise Refusal("forbidden", "needs the publish grant")
        if not isinstance(data, dict):
            return  # the router refuses the shape
        description, sources = data.get("description"), data.get("sources", {})
        sdp = description.get("sdp") if isinstance(description, dict) else None
        if not isinstance(sdp, str) or not isinstance(sources, dict):
            return
        for source in offered_sources(sdp, sources):
            if not g.may_publish(source):
                raise Refusal("forbidden", f"needs the publish grant for {source}")

    # -- events ----------------------------------------------------------------------------
    async def _join_room(self, sid: str, data: Any) -> dict[str, Any]:
        msg = parse(JoinRoomIn, data)
        room_id = self.limits.ident(msg.roomId, "roomId")
        # Checked on every join (refused alike whether it would create the room or not).
        self.limits.room_name(msg.roomName)
        connection = self.connections[sid]
        if self.rooms.locate(sid) is not None:
            raise Refusal("already_joined", "this connection is already in a room")
        if self.before_join is not None:
            await self.before_join(room_id)
        token = self._verify_token(connection, msg.token, room_id) if msg.token else None
        if token is not None:
            try:  # the token's identity is the user id: the client's own is ignored
                user_id = self.limits.ident(token.identity, "the token's sub")
                name = self.limits.name(token.name or msg.userName)
            except Refusal as exc:
                raise Refusal("invalid_token", f"invalid join token: {exc.message}") from None
            if not token.grants.join:
                raise Refusal("forbidden", "needs the join grant")
        else:
            user_id = self.limits.ident(msg.userId, "userId")
            name = self.limits.name(msg.userName)
        grants = token.grants if token else None
        wanted = (msg.media or MediaIn()).model_dump().items()
        media = MediaState(
            **{k: v for k, v in wanted if v and (grants is None or grants.may_publish(k))}
        )
        for _ in range(ADMIT_ATTEMPTS):
            room = self.rooms.get(room_id)
            create = await self._admit(connection, room_id, room, msg, token, user_id)
            if self.rooms.get(room_id) is room:  # nothing came or went while we awaited
                break
        else:
            raise Refusal("rate_limited", "this room is changing too fast; try again")
        replaced = await self._replace_stale(sid, room_id, user_id, msg.rejoinToken)
        if room is not None and room.locked and replaced is None:
            knock = self._let_in(sid, room, user_id, name, msg.rejoinToken, token)
            if knock is not None:
                return await self._knock(room, knock)
        room, participant, _ = self.rooms.join(
            room_id,
            user_id,
            name,
            sid,
            msg.mode,
            media,
            by=connection.address,
            successor_of=replaced,
            rejoin_token=msg.rejoinToken,
            grants=token.grants if token else DEFAULT,
            by_token=token is not None,
            create=create,
        )
        await self.sio.enter_room(sid, room.room_id)
        others = [p.public() for p in room.others(user_id)]
        await self.sio.emit("room-participants", others, to=sid)
        await self.sio.emit("user-joined", participant.public(), room=room.room_id, skip_sid=sid)
        for hook in self.on_join:
            await hook(room, participant)
        where = self.rooms.locate(sid)
        if where is None or where[1] is not participant:
            # It left (leave-room, a disconnect) while this join awaited: what the hooks
            # set up after the leave's hooks ran (a media session) goes too.
            for hook in self.on_leave:
                await hook(room, participant)
            raise Refusal("not_in_room", "left the room while joining")
        ice_servers, expires = turn.participant_ice_servers(self.settings.ice, user_id)
        answer = {
            "roomId": room.room_id,
            "roomName": room.name,
            "userId": user_id,
            "userName": name,
            "mode": room.mode,
            "participants": others,
            "chatHistory": list(room.chat_history),
            "iceServers": ice_servers,
            "isCreator": participant.is_moderator,  # the older name of role == "moderator"
            "role": participant.role,
            "grants": self.rights(room, participant),
            "locked": room.locked,
            "access": stricter(room.access, self.settings.rooms.access),
            "rejoinToken": participant.rejoin_token,
        }
        if participant.is_moderator:
            answer["lobby"] = [k.public() for k in room.lobby.values() if not k.admitted]
        for extra in self.join_extras:
            answer.update(extra(room, participant))
        if expires is not None:
            self._schedule_ice_renewal(sid, user_id)
        return answer

    # -- the door: tokens, passwords, bans -------------------------------------------------
    def _wrong(self, address: str, room_id: str | None) -> None:
        """Counts a wrong password or a bad token against the address (and the room)."""
        n = self.settings.limits.password_attempts_per_minute  # live changes apply
        self.wrong_by_address.rate, self.wrong_by_address.burst = n / 60, n
        self.wrong_by_room.rate, self.wrong_by_room.burst = n * 10 / 60, n * 10
        self.wrong_by_address.allow(address)
        if room_id is not None:
            self.wrong_by_room.allow(room_id)

    def _guessing(self, address: str, room_id: str | None) -> None:
        if self.wrong_by_address.blocked(address) or (
            room_id is not None and self.wrong_by_room.blocked(room_id)
        ):
            raise Refusal(
                "rate_limited", "too many wrong passwords or tokens; wait a minute and try again"
            )

    def _verify_token(self, connection: Connection, given: str, room_id: str) -> JoinToken:
        self._guessing(connection.address, None)
        try:
            return tokens.verify(given, self.settings.auth, room_id)
        except Refusal as exc:
            if exc.code == "invalid_token":
                self._wrong(connection.address, None)
            raise

    async def _admit(
        self,
        connection: Connection,
        room_id: str,
        room: Room | None,
        msg: JoinRoomIn,
        token: JoinToken | None,
        user_id: str,
    ) -> dict[str, Any] | None:
        """Refuses a join the room's access does not allow; for a room this join creates,
        the :meth:`RoomRegistry.create` arguments."""
        floor = self.settings.rooms.access
        if room is None:
            return await self._creation(room_id, msg, token, floor)
        access = stricter(room.access, floor)
        if access == "token" and token is None:
            raise Refusal("token_required", "this meeting needs a join token")
        if access == "password" and token is None:
            if msg.password is None:
                raise Refusal("password_required", "this meeting needs a password")
            password = self.limits.password(msg.password)
            self._guessing(connection.address, room_id)
            right = room.password_hash is not None and await passwords.verify_password(
                room.password_hash, password
            )
            if not right:
                self._wrong(connection.address, room_id)
                raise Refusal("wrong_password", "wrong password")
        left = room.banned_for(user_id)
        if left > 0:
            minutes = math.ceil(left / 60)
            raise Refusal(
                "removed",
                f"you were removed from this meeting; you can rejoin in {minutes} minute"
                + ("s" if minutes != 1 else ""),
            )
        return None

    async def _creation(
        self, room_id: str, msg: JoinRoomIn, token: JoinToken | None, floor: str
    ) -> dict[str, Any]:
        if token is None and floor == "token":
            raise Refusal("token_required", "this meeting needs a join token")
        may_create = token is not None and token.grants.create_room
        if not self.settings.rooms.create_on_join and not may_create:
            if token is not None:
                raise Refusal("forbidden", "needs the createRoom grant: the meeting does not exist")
            raise Refusal("unknown_room", "This meeting does not exist")
        given = token.room_settings if token is not None and may_create else None
        access = (given.access if given else None) or msg.access or "open"
        password = (given.password if given else None) or msg.password
        if password is not None and access == "open":
            access = "password"  # a password given when creating is the room's password
        access = stricter(access, floor)  # type: ignore[arg-type]
        if access == "password" and password is None:
            raise Refusal("password_required", "this meeting needs a password")
        cap = given.max_participants if given else None
        create: dict[str, Any] = {
            "access": access,
            "max_participants": cap,
            "name": self.limits.room_name(msg.roomName),
        }
        if access == "password" and password is not None:
            create["password_hash"] = await passwords.hash_password(self.limits.password(password))
        if given is not None and given.mode is not None and msg.mode is None:
            msg.mode = given.mode
        return create

    # -- the lobby -------------------------------------------------------------------------
    def _let_in(
        self,
        sid: str,
        room: Room,
        user_id: str,
        name: str,
        rejoin_token: str | None,
        token: JoinToken | None,
    ) -> Knock | None:
        """None when this join may enter the locked room; else its (new or waiting) knock."""
        if token is not None and token.grants.moderate:
            return None
        if rejoin_token is not None and any(
            hmac.compare_digest(rejoin_token.encode(), kept.encode())
            for kept in room.moderator_tokens
        ):
            return None  # a moderator coming back
        held = self._knocks.get(sid)
        knock = room.lobby.get(held[1]) if held and held[0] == room.room_id else None
        if knock is not None and knock.admitted:
            self._resolve_knock(room, knock)  # let in once
            return None
        if knock is None:
            if len(room.lobby) >= self.rooms.capacity(room):
                raise Refusal("room_full", "the lobby is full")
            knock = Knock(secrets.token_urlsafe(9), sid, user_id, name)
        return knock

    async def _knock(self, room: Room, knock: Knock) -> dict[str, Any]:
        if knock.request_id not in room.lobby:
            held = self._knocks.get(knock.sid)
            if held is not None:  # knocking on another room: that knock is given up
                await self.cancel_knock(knock.sid)
            room.lobby[knock.request_id] = knock
            self._knocks[knock.sid] = (room.room_id, knock.request_id)
            self._arm_knock(room, knock)
            log.info("lobby: %s (%s) knocks on %s", knock.user_id, knock.user_name, room.room_id)
            for moderator in room.moderators():
                await self.sio.emit("lobby-knock", knock.public(), to=moderator.sid)
        return {"lobby": True, "requestId": knock.request_id, "roomId": room.room_id}

    def _arm_knock(self, room: Room, knock: Knock) -> None:
        old = self._knock_timers.pop(knock.request_id, None)
        if old is not None:
            old.cancel()
        self._knock_timers[knock.request_id] = asyncio.create_task(self._expire(room, knock))

    async def _expire(self, room: Room, knock: Knock) -> None:
        await asyncio.sleep(self.settings.rooms.lobby_timeout_seconds)
        self._knock_timers.pop(knock.request_id, None)
        if room.lobby.get(knock.request_id) is not knock:
            return
        self._resolve_knock(room, knock)
        if knock.admitted:
            return  # admitted and never came: the admission lapses
        await self.sio.emit(
            "lobby-denied",
            {
                "requestId": knock.request_id,
                "reason": "timeout",
                "message": "Nobody let you in: no moderator answered in time",
            },
            to=knock.sid,
        )
        await self._tell_moderators(room, knock, admitted=False, by=None)

    def _resolve_knock(self, room: Room, knock: Knock) -> None:
        room.lobby.pop(knock.request_id, None)
        if self._knocks.get(knock.sid) == (room.room_id, knock.request_id):
            del self._knocks[knock.sid]
        timer = self._knock_timers.pop(knock.request_id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    async def _tell_moderators(
        self, room: Room, knock: Knock, admitted: bool, by: Participant | None
    ) -> None:
        event = {
            "requestId": knock.request_id,
            "admitted": admitted,
            "by": by.user_id if by else None,
        }
        for moderator in room.moderators():
            await self.sio.emit("lobby-resolved", event, to=moderator.sid)

    async def admit(self, room: Room, knock: Knock, by: Participant | None) -> None:
        """Lets a knock in: its socket sends its join-room again and enters once."""
        knock.admitted = True
        self._arm_knock(room, knock)  # the admission lapses after the lobby timeout
        await self.sio.emit("lobby-admitted", {"requestId": knock.request_id}, to=knock.sid)
        await self._tell_moderators(room, knock, admitted=True, by=by)

    async def deny(
        self, room: Room, knock: Knock, by: Participant | None, reason: str, message: str
    ) -> None:
        self._resolve_knock(room, knock)
        await self.sio.emit(
            "lobby-denied",
            {"requestId": knock.request_id, "reason": reason, "message": message},
            to=knock.sid,
        )
        if by is not None:
            await self._tell_moderators(room, knock, admitted=False, by=by)

    def knock(self, room: Room, request_id: str) -> Knock:
        knock = room.lobby.get(request_id)
        if knock is None or knock.admitted:
            raise Refusal("unknown_request", "no such request waiting in the lobby")
        return knock

    async def cancel_knock(self, sid: str) -> bool:
        """The knocking socket gave up (left, disconnected): the moderators' lists update."""
        held = self._knocks.get(sid)
        room = self.rooms.get(held[0]) if held else None
        knock = room.lobby.get(held[1]) if room and held else None
        if held is not None:
            self._knocks.pop(sid, None)
        if room is None or knock is None:
            return held is not None
        self._resolve_knock(room, knock)
        if not knock.admitted:
            await self._tell_moderators(room, knock, admitted=False, by=None)
        return True

    def _room_deleted(self, room: Room) -> None:
        """Knocks on a room that is gone are told so."""
        waiting = list(room.lobby.values())
        for knock in waiting:
            self._resolve_knock(room, knock)
        if waiting:
            task = asyncio.ensure_future(self._tell_closed(waiting))
            self._closing_tells.add(task)
            task.add_done_callback(self._closing_tells.discard)

    async def _tell_closed(self, waiting: list[Knock]) -> None:
        for knock in waiting:
            await self.sio.emit(
                "lobby-denied",
                {
                    "requestId": knock.request_id,
                    "reason": "room_closed",
                    "message": "The meeting has ended",
                },
                to=knock.sid,
            )

    # -- TURN credentials ------------------------------------------------------------------
    def _schedule_ice_renewal(self, sid: str, user_id: str) -> None:
        old = self._ice_renewals.pop(sid, None)
        if old is not None:
            old.cancel()
        self._ice_renewals[sid] = asyncio.create_task(self._renew_ice(sid, user_id))

    async def _renew_ice(self, sid: str, user_id: str) -> None:
        """Pushes ``ice-servers`` with fresh credentials before the last ones expire, for as
        long as the participant stays (a meeting may outlast ``ice.turn_ttl_seconds``)."""
        while True:
            await asyncio.sleep(self.settings.ice.turn_ttl_seconds * self.ice_renew_fraction)
            if not await self._push_ice_servers(sid, user_id):
                return

    async def _push_ice_servers(self, sid: str, user_id: str) -> bool:
        """Sends the participant its ICE servers now; False when nothing is minted for it."""
        where = self.rooms.locate(sid)
        if where is None or where[1].user_id != user_id:
            return False
        ice_servers, expires = turn.participant_ice_servers(self.settings.ice, user_id)
        try:
            await self.sio.emit("ice-servers", {"iceServers": ice_servers}, to=sid)
        except Exception:  # a socket that is going away; its leave cancels the renewal
            log.debug("ice-servers to %s failed", sid, exc_info=True)
        return expires is not None

    async def ice_settings_changed(self) -> None:
        """After a live change of ``ice.servers``/``ice.turn_secret``/``ice.turn_ttl_seconds``:
        every participant gets the new list at once (a rotated secret, a new TURN server),
        and its renewals follow the new lifetime."""
        for room in list(self.rooms.rooms.values()):
            for participant in list(room.participants.values()):
                sid, user_id = participant.sid, participant.user_id
                if await self._push_ice_servers(sid, user_id):
                    self._schedule_ice_renewal(sid, user_id)
                else:
                    renewal = self._ice_renewals.pop(sid, None)
                    if renewal is not None:
                        renewal.cancel()

    async def _replace_stale(
        self, sid: str, room_id: str, user_id: str, token: str | None
    ) -> Participant | None:
        """A rejoin with the token of the socket holding ``user_id`` takes its place.

        After a network drop the server keeps the old socket until Engine.IO's ping timeout;
        the client's new socket proves it is the same participant with the token from its
        join answer. The others see the old one leave and the new one join, so P2P peers
        rebuild their connections. Without the right token the id stays taken.
        """
        holder = self.rooms.holder(room_id, user_id)
        if token is None or holder is None or self.rooms.locate(sid) is not None:
            return None  # (a socket already in a room is refused by the join itself)
        if not hmac.compare_digest(token.encode(), holder.rejoin_token.encode()):
            return None  # join then refuses with user_id_taken
        await self.depart(holder.sid, why="replaced by a new connection", keep_room=True)
        await self.sio.disconnect(holder.sid)
        return holder

    async def _leave_room(self, sid: str, data: Any) -> None:
        if await self.cancel_knock(sid):  # a knock given up
            return
        if not await self.depart(sid, why="left"):
            raise Refusal("not_in_room", "not in a room")

    async def _signal_send(self, sid: str, data: Any) -> None:
        room, sender = self._need(sid)
        msg = parse(SignalSendIn, data)
        if msg.userId != sender.user_id:
            raise Refusal("spoofed_user_id", "userId is not yours")
        target = room.participants.get(msg.targetUserId)
        if target is None or target.user_id == sender.user_id:
            raise Refusal("unknown_target", "no such participant in your room")
        # P2P media goes browser to browser: what the server can hold back is the connection
        # itself, when neither may send media the other may receive (docs/security.md).
        a, b = sender.grants, target.grants
        if not (a.publishes and b.subscribe) and not (b.publishes and a.subscribe):
            raise Refusal("forbidden", "needs the publish or subscribe grant")
        await self.sio.emit(
            "signal-receive", {"userId": sender.user_id, "signal": msg.signal}, to=target.sid
        )

    async def _chat_message(self, sid: str, data: Any) -> dict[str, Any]:
        room, sender = self._need(sid)
        text = self.limits.chat(parse(ChatMessageIn, data).message)
        if not sender.grants.chat:
            raise Refusal("forbidden", "needs the chat grant")
        message = {
            "id": uuid.uuid4().hex,
            "userId": sender.user_id,
            "userName": sender.user_name,
            "message": text,
            "timestamp": int(time.time() * 1000),
        }
        room.chat_history.append(message)
        await self.sio.emit("chat-message", message, room=room.room_id)
        return {"id": message["id"], "timestamp": message["timestamp"]}

    async def _emoji_reaction(self, sid: str, data: Any) -> dict[str, Any]:
        room, sender = self._need(sid)
        emoji = self.limits.emoji(parse(EmojiReactionIn, data).emoji)
        reaction = {
            "id": uuid.uuid4().hex,
            "userId": sender.user_id,
            "userName": sender.user_name,
            "emoji": emoji,
            "timestamp": int(time.time() * 1000),
        }
        await self.sio.emit("emoji-reaction", reaction, room=room.room_id)
        return {"id": reaction["id"]}

    async def _media_state(self, sid: str, data: Any) -> dict[str, Any]:
        room, sender = self._need(sid)
        changes = {k: v for k, v in parse(MediaIn, data).model_dump().items() if v is not None}
        if not changes:
            raise Refusal("invalid_payload", "give at least one of audio, video, screen")
        for kind, on in changes.items():
            if on and not sender.grants.may_publish(kind):
                raise Refusal("forbidden", f"needs the publish grant for {kind}")
        for key, value in changes.items():
            setattr(sender.media, key, value)
        media = sender.media.as_dict()
        await self.sio.emit(
            "media-state",
            {"userId": sender.user_id, "media": media},
            room=room.room_id,
            skip_sid=sid,
        )
        return {"media": media}

    async def _raise_hand(self, sid: str, data: Any) -> dict[str, Any]:
        """A participant raises or lowers its own hand; the room is told (#18). Raising a
        raised hand keeps its place in the queue (its first time)."""
        room, sender = self._need(sid)
        raised = parse(RaiseHandIn, data).raised
        if raised == (sender.hand_raised_at is not None):
            return {"raised": raised, "at": sender.hand_raised_at}
        sender.hand_raised_at = int(time.time() * 1000) if raised else None
        event = {"userId": sender.user_id, "raised": raised, "at": sender.hand_raised_at}
        await self.sio.emit("hand-raised", event, room=room.room_id, skip_sid=sid)
        return {"raised": raised, "at": sender.hand_raised_at}

    async def _local_recording(self, sid: str, data: Any) -> dict[str, Any]:
        """A participant says it records the meeting in its browser, or stopped; the room is
        told (#18). The server cannot check it: it is the app's courtesy to the others, and
        a client that records without saying so is not stopped (docs/security.md)."""
        room, sender = self._need(sid)
        recording = parse(LocalRecordingIn, data).recording
        if recording != sender.local_recording:
            sender.local_recording = recording
            event = {"userId": sender.user_id, "recording": recording}
            await self.sio.emit("local-recording", event, room=room.room_id, skip_sid=sid)
        return {"recording": recording}

    async def close_room(self, room: Room, reason: str, by: Participant | None = None) -> None:
        """Ends a meeting: everyone is told with ``room-closed`` and removed; the room goes."""
        event: dict[str, Any] = {"roomId": room.room_id, "reason": reason}
        if by is not None:
            event.update(by=by.user_id, byName=by.user_name)
        await self.sio.emit("room-closed", event, room=room.room_id)
        for participant in list(room.participants.values()):
            await self.depart(participant.sid, why="room closed", keep_room=True)
        self.rooms.delete(room.room_id)

    # -- shutdown --------------------------------------------------------------------------
    async def shutdown(self, reason: str = "server shutting down") -> None:
        """Tell every client, give them a moment, then close every connection."""
        if self.connections:
            for sid, connection in list(self.connections.items()):
                if connection.node is not None:  # on another node: its room moves
                    await self.sio.emit("server-shutdown", {"reason": reason}, to=sid)
            # This node's sockets only (with a cluster, a broadcast reaches every node's).
            await self.sio.emit("server-shutdown", {"reason": reason}, ignore_queue=True)
            await asyncio.sleep(self.settings.server.shutdown_grace_seconds)
        for sid in list(self.connections):
            try:
                await self.sio.disconnect(sid)
            except Exception:  # a socket that is already gone
                log.debug("disconnect %s failed", sid, exc_info=True)


def _unknown_reason(event: Any) -> str:
    if not isinstance(event, str) or not event:
        return "an event name is a non-empty string"
    if event in RESERVED:
        return f"{event!r} is a reserved name, not an event a client may send"
    return "unknown event"
