"""Socket.IO events: the architecture guide's signaling protocol, plus chat, emoji and media state.

Thin by design: every handler validates its input, asks the room registry, and shapes the
reply. Each event is acknowledged with ``{"ok": true, ...}`` or
``{"ok": false, "error": CODE, "message": ...}``; a refused event changes nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sfu.media import turn
from sfu.metrics import Metrics
from sfu.ratelimit import TokenBucket
from sfu.refusal import Refusal
from sfu.rooms import MediaState, Participant, Room, RoomRegistry
from sfu.server.http_edge import client_address, origin_allowed, request_scheme
from sfu.server.socketio_server import SocketServer
from sfu.settings import Settings
from sfu.validation import (
    ChatMessageIn,
    EmojiReactionIn,
    JoinRoomIn,
    Limits,
    MediaIn,
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


@dataclass
class Connection:
    """What the server keeps per socket, from connect to disconnect (not per join)."""

    address: str
    eio_sid: str | None = None
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
        # sid -> the task that pushes fresh TURN credentials before the minted ones expire.
        self._ice_renewals: dict[str, asyncio.Task[None]] = {}
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

    async def _dispatch(
        self, sid: str, event: Any, data: Any, problem: Refusal | None
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

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        connection = self.connections.pop(sid, None)
        if connection is None:
            return
        self.metrics.connections.dec()
        self._by_eio.pop(connection.eio_sid or "", None)
        suppressed = sum(int(n) for _, n in connection.refusals.values())
        if suppressed:
            log.info("%s sent %d more refused events before it left", sid, suppressed)
        await self._depart(sid, why="disconnected")

    async def _depart(self, sid: str, why: str, keep_room: bool = False) -> bool:
        renewal = self._ice_renewals.pop(sid, None)
        if renewal is not None:
            renewal.cancel()
        gone = self.rooms.leave(sid, keep_room=keep_room)
        if gone is None:
            return False
        room, participant = gone
        await self.sio.leave_room(sid, room.room_id)
        for hook in self.on_leave:
            await hook(room, participant)
        await self.sio.emit("user-left", {"userId": participant.user_id}, room=room.room_id)
        log.info("user-left %s from %s (%s)", participant.user_id, room.room_id, why)
        return True

    # -- events ----------------------------------------------------------------------------
    async def _join_room(self, sid: str, data: Any) -> dict[str, Any]:
        msg = parse(JoinRoomIn, data)
        room_id = self.limits.ident(msg.roomId, "roomId")
        user_id = self.limits.ident(msg.userId, "userId")
        name = self.limits.name(msg.userName)
        media = MediaState(**{k: v for k, v in (msg.media or MediaIn()).model_dump().items() if v})
        connection = self.connections[sid]
        replaced = await self._replace_stale(sid, room_id, user_id, msg.rejoinToken)
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
            "userId": user_id,
            "mode": room.mode,
            "participants": others,
            "chatHistory": list(room.chat_history),
            "iceServers": ice_servers,
            "isCreator": participant.is_creator,
            "rejoinToken": participant.rejoin_token,
        }
        for extra in self.join_extras:
            answer.update(extra(room, participant))
        if expires is not None:
            self._schedule_ice_renewal(sid, user_id)
        return answer

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
        await self._depart(holder.sid, why="replaced by a new connection", keep_room=True)
        await self.sio.disconnect(holder.sid)
        return holder

    async def _leave_room(self, sid: str, data: Any) -> None:
        if not await self._depart(sid, why="left"):
            raise Refusal("not_in_room", "not in a room")

    async def _signal_send(self, sid: str, data: Any) -> None:
        room, sender = self._need(sid)
        msg = parse(SignalSendIn, data)
        if msg.userId != sender.user_id:
            raise Refusal("spoofed_user_id", "userId is not yours")
        target = room.participants.get(msg.targetUserId)
        if target is None or target.user_id == sender.user_id:
            raise Refusal("unknown_target", "no such participant in your room")
        await self.sio.emit(
            "signal-receive", {"userId": sender.user_id, "signal": msg.signal}, to=target.sid
        )

    async def _chat_message(self, sid: str, data: Any) -> dict[str, Any]:
        room, sender = self._need(sid)
        text = self.limits.chat(parse(ChatMessageIn, data).message)
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

    async def close_room(self, room: Room, reason: str) -> None:
        """Ends a meeting: everyone is told with ``room-closed`` and removed; the room goes."""
        await self.sio.emit(
            "room-closed", {"roomId": room.room_id, "reason": reason}, room=room.room_id
        )
        for participant in list(room.participants.values()):
            await self._depart(participant.sid, why="room closed")
        self.rooms.delete(room.room_id)

    # -- shutdown --------------------------------------------------------------------------
    async def shutdown(self, reason: str = "server shutting down") -> None:
        """Tell every client, give them a moment, then close every connection."""
        if self.connections:
            await self.sio.emit("server-shutdown", {"reason": reason})
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
