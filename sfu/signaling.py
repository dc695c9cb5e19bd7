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
from typing import Any

import socketio

from sfu.metrics import Metrics
from sfu.ratelimit import TokenBucket
from sfu.rooms import MediaState, Participant, Room, RoomError, RoomRegistry
from sfu.settings import Settings
from sfu.validation import (
    ChatMessageIn,
    EmojiReactionIn,
    InvalidInput,
    JoinRoomIn,
    Limits,
    MediaIn,
    SignalSendIn,
    parse,
)

log = logging.getLogger("sfu.signaling")

Handler = Callable[[str, Any], Awaitable[dict[str, Any] | None]]
# Rate-limit buckets: every client event belongs to one.
BUCKETS = ("chat", "emoji", "signal", "other")


class Signaling:
    """The Socket.IO server and its event handlers."""

    def __init__(self, settings: Settings, rooms: RoomRegistry, metrics: Metrics) -> None:
        self.settings = settings
        self.rooms = rooms
        self.metrics = metrics
        self.limits = Limits(settings.limits)
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            cors_allowed_origins=self._origin_allowed,
            # Engine.IO drops a connection over this size; the per-event check below answers
            # with an error for anything between max_payload_bytes and this.
            max_http_buffer_size=4 * settings.limits.max_payload_bytes + 4096,
            logger=False,
            engineio_logger=False,
        )
        self._buckets: dict[str, dict[str, TokenBucket]] = {}
        # SFU media events are handed to the room's router (set by the media layer).
        self.sfu_events: set[str] = set()
        # Awaited with (room, participant) after a join or a leave (the media layer subscribes).
        self.on_join: list[Callable[[Room, Participant], Awaitable[None]]] = []
        self.on_leave: list[Callable[[Room, Participant], Awaitable[None]]] = []
        # Each adds fields to the join-room answer (e.g. the recording state and token).
        self.join_extras: list[Callable[[Room, Participant], dict[str, Any]]] = []
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self.sio.on("*", self._unknown)
        for name, bucket, handler in (
            ("join-room", "other", self._join_room),
            ("leave-room", "other", self._leave_room),
            ("signal-send", "signal", self._signal_send),
            ("chat-message", "chat", self._chat_message),
            ("emoji-reaction", "emoji", self._emoji_reaction),
            ("media-state", "other", self._media_state),
        ):
            self.sio.on(name, self._guarded(name, bucket, handler))

    # -- plumbing --------------------------------------------------------------------------
    def _origin_allowed(self, origin: str | None, environ: dict[str, Any]) -> bool:
        if origin is None:
            return True
        scheme = environ.get("wsgi.url_scheme", "http")
        own = f"{scheme}://{environ.get('HTTP_HOST', '')}"
        return origin == own or origin in self.settings.server.cors_origins

    def _bucket(self, sid: str, name: str) -> TokenBucket:
        buckets = self._buckets.setdefault(sid, {})
        bucket = buckets.get(name)
        s = self.settings.limits
        rate, burst = {
            "chat": (s.chat_per_second, s.chat_burst),
            "emoji": (s.emoji_per_second, s.emoji_burst),
            "signal": (s.signal_per_second, s.signal_burst),
            "other": (s.other_per_second, s.other_burst),
        }[name]
        if bucket is None:
            bucket = buckets[name] = TokenBucket(rate, burst)
        else:  # limits can change at run time
            bucket.rate, bucket.burst = rate, burst
        return bucket

    def register_sfu_event(self, name: str, handler: Handler) -> None:
        """Adds an ``sfu-*`` event handled by the media layer, guarded like every other."""
        self.sfu_events.add(name)
        self.sio.on(name, self._guarded(name, "signal", handler))

    def register_event(self, name: str, bucket: str, handler: Handler) -> None:
        """Adds a client event of another layer (e.g. recording), guarded like every other."""
        self.sio.on(name, self._guarded(name, bucket, handler))

    def _guarded(self, name: str, bucket: str, handler: Handler) -> Callable[..., Any]:
        async def guarded(sid: str, *args: Any) -> dict[str, Any]:
            data = args[0] if args else None
            try:
                self.limits.check_size(data)
                if not self._bucket(sid, bucket).allow():
                    raise InvalidInput(f"too many {name} events; slow down", code="rate_limited")
                result = await handler(sid, data)
            except (InvalidInput, RoomError) as exc:
                self.metrics.events.labels(name, exc.code).inc()
                log.info("refused %s from %s: %s (%s)", name, sid, exc.code, exc.message)
                return {"ok": False, "error": exc.code, "message": exc.message}
            except Exception:
                self.metrics.events.labels(name, "internal_error").inc()
                log.exception("error handling %s from %s", name, sid)
                return {"ok": False, "error": "internal_error", "message": "internal server error"}
            if result and result.get("ok") is False:  # a lower layer's own refusal
                self.metrics.events.labels(name, str(result.get("error"))).inc()
                log.info("refused %s from %s: %s", name, sid, result.get("error"))
                return result
            self.metrics.events.labels(name, "ok").inc()
            return {"ok": True, **(result or {})}

        return guarded

    async def _unknown(self, event: str, sid: str, *args: Any) -> dict[str, Any]:
        log.info("refused unknown event %r from %s", event[:64], sid)
        self.metrics.events.labels("unknown", "unknown_event").inc()
        return {"ok": False, "error": "unknown_event", "message": "unknown event"}

    def _need(self, sid: str) -> tuple[Room, Participant]:
        where = self.rooms.locate(sid)
        if where is None:
            raise InvalidInput("join a room first", code="not_in_room")
        return where

    # -- connection ------------------------------------------------------------------------
    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        self.metrics.connections.inc()

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        self.metrics.connections.dec()
        self._buckets.pop(sid, None)
        await self._depart(sid, why="disconnected")

    async def _depart(self, sid: str, why: str, keep_room: bool = False) -> bool:
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
        await self._replace_stale(sid, room_id, user_id, msg.rejoinToken)
        room, participant, _ = self.rooms.join(room_id, user_id, name, sid, msg.mode, media)
        await self.sio.enter_room(sid, room.room_id)
        others = [p.public() for p in room.others(user_id)]
        await self.sio.emit("room-participants", others, to=sid)
        await self.sio.emit("user-joined", participant.public(), room=room.room_id, skip_sid=sid)
        for hook in self.on_join:
            await hook(room, participant)
        answer = {
            "roomId": room.room_id,
            "userId": user_id,
            "mode": room.mode,
            "participants": others,
            "chatHistory": list(room.chat_history),
            "iceServers": ice_servers(self.settings),
            "isCreator": room.creator_user_id == user_id,
            "rejoinToken": participant.rejoin_token,
        }
        for extra in self.join_extras:
            answer.update(extra(room, participant))
        return answer

    async def _replace_stale(self, sid: str, room_id: str, user_id: str, token: str | None) -> None:
        """A rejoin with the token of the socket holding ``user_id`` takes its place.

        After a network drop the server keeps the old socket until Engine.IO's ping timeout;
        the client's new socket proves it is the same participant with the token from its
        join answer. The others see the old one leave and the new one join, so P2P peers
        rebuild their connections. Without the right token the id stays taken.
        """
        holder = self.rooms.holder(room_id, user_id)
        if token is None or holder is None or self.rooms.locate(sid) is not None:
            return  # (a socket already in a room is refused by the join itself)
        if not hmac.compare_digest(token.encode(), holder.rejoin_token.encode()):
            return  # join then refuses with user_id_taken
        await self._depart(holder.sid, why="replaced by a new connection", keep_room=True)
        await self.sio.disconnect(holder.sid)

    async def _leave_room(self, sid: str, data: Any) -> None:
        if not await self._depart(sid, why="left"):
            raise InvalidInput("not in a room", code="not_in_room")

    async def _signal_send(self, sid: str, data: Any) -> None:
        room, sender = self._need(sid)
        msg = parse(SignalSendIn, data)
        if msg.userId != sender.user_id:
            raise InvalidInput("userId is not yours", code="spoofed_user_id")
        target = room.participants.get(msg.targetUserId)
        if target is None or target.user_id == sender.user_id:
            raise InvalidInput("no such participant in your room", code="unknown_target")
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
            raise InvalidInput("give at least one of audio, video, screen")
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
        sids = list(self._buckets)
        if sids:
            await self.sio.emit("server-shutdown", {"reason": reason})
            await asyncio.sleep(self.settings.server.shutdown_grace_seconds)
        for sid in list(self._buckets):
            try:
                await self.sio.disconnect(sid)
            except Exception:  # a socket that is already gone
                log.debug("disconnect %s failed", sid, exc_info=True)


def ice_servers(settings: Settings) -> list[dict[str, Any]]:
    """The RTCIceServer list handed to browsers (empty unless configured)."""
    return [s.model_dump(exclude_none=True) for s in settings.ice.servers]
