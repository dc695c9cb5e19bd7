"""Rooms and participants: the one place that knows who is where.

A room has a mode (``p2p`` or ``sfu``) fixed when it is created, a set of participants keyed by
their ``userId``, and a bounded chat history. The registry enforces the per-room and
per-server caps and binds each ``userId`` to the socket that joined with it.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sfu.ratelimit import KeyedBuckets
from sfu.refusal import Refusal
from sfu.settings import Settings

if TYPE_CHECKING:  # the media layer is not imported by the room layer, only named
    from sfu.media import Router

log = logging.getLogger("sfu.rooms")

Mode = Literal["p2p", "sfu"]
MODES: tuple[Mode, ...] = ("p2p", "sfu")


@dataclass
class MediaState:
    """What a participant sends: microphone, camera and screen on or off."""

    audio: bool = False
    video: bool = False
    screen: bool = False

    def as_dict(self) -> dict[str, bool]:
        return {"audio": self.audio, "video": self.video, "screen": self.screen}


@dataclass
class Participant:
    """A user in a room, bound to the Socket.IO session that joined."""

    user_id: str
    user_name: str
    sid: str
    joined_at: float = field(default_factory=time.time)
    media: MediaState = field(default_factory=MediaState)
    # The room's creator: bound to this socket (and its rejoins), never to the user id, which
    # a later joiner could take once this participant has left.
    is_creator: bool = False
    # Given only to this participant (join answer): lets its next socket replace this one.
    rejoin_token: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    def public(self) -> dict[str, Any]:
        """The participant as other clients see it."""
        return {"userId": self.user_id, "userName": self.user_name, "media": self.media.as_dict()}


@dataclass
class Room:
    """A meeting: its mode, participants and recent chat."""

    room_id: str
    mode: Mode
    chat_history: deque[dict[str, Any]]
    created_at: float = field(default_factory=time.time)
    # Whether the creator's right has been given: once, to the first joiner.
    creator_assigned: bool = False
    # The departed creator's last rejoin token: a join that brings it takes the right back
    # (a reconnect after the server had already dropped the old socket).
    creator_token: str | None = None
    participants: dict[str, Participant] = field(default_factory=dict)
    # Rooms made by POST /api/rooms wait this long (monotonic) for a first joiner.
    expires_at: float | None = None
    # Set by the layers above: the SFU room's media router (sfu/server/media_events.py), the token
    # that reads its recordings and whether auto_start has fired (sfu/recording/rooms.py).
    router: Router | None = None
    recording_token: str | None = None
    recording_auto_started: bool = False

    def others(self, user_id: str) -> list[Participant]:
        return [p for p in self.participants.values() if p.user_id != user_id]

    def summary(self) -> dict[str, Any]:
        return {
            "roomId": self.room_id,
            "mode": self.mode,
            "participants": len(self.participants),
            "createdAt": self.created_at,
        }


def new_room_id() -> str:
    """A random, URL-safe room id that is hard to guess."""
    return secrets.token_urlsafe(9).replace("_", "x").replace("-", "y")


class RoomRegistry:
    """All rooms of this server, in memory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rooms: dict[str, Room] = {}
        self._by_sid: dict[str, tuple[str, str]] = {}  # sid -> (room_id, user_id)
        # Called with a room after it is removed (closes its SFU router, stops recordings).
        self.on_room_deleted: list[Callable[[Room], Any]] = []
        self.on_room_created: list[Callable[[Room], Any]] = []
        # Rooms made per client address, by POST /api/rooms and by join-room alike.
        self._created_by = KeyedBuckets(settings.rooms.create_per_minute / 60, 5)

    # -- rooms ---------------------------------------------------------------------------
    def get(self, room_id: str) -> Room | None:
        return self.rooms.get(room_id)

    def create(
        self, room_id: str | None, mode: Mode, *, expires: bool = False, by: str | None = None
    ) -> Room:
        """Create an empty room; ``expires`` gives it the empty-room grace period.

        ``by`` is the client address asking (None: the administrator); each address may
        create ``rooms.create_per_minute`` rooms a minute (bursts of 5), however it asks.
        """
        if mode not in MODES:
            raise Refusal("invalid_payload", "mode must be 'p2p' or 'sfu'")
        if by is not None:  # first: an attempt on an existing id costs a token too (no oracle)
            self._created_by.rate = self.settings.rooms.create_per_minute / 60
            if not self._created_by.allow(by):
                raise Refusal(
                    "rate_limited", "too many rooms created from your address; wait a minute"
                )
        if room_id is not None and room_id in self.rooms:
            raise Refusal("room_exists", f"room {room_id!r} already exists")
        if len(self.rooms) >= self.settings.rooms.max_rooms:
            raise Refusal("too_many_rooms", "the server has no room for another room")
        while room_id is None or room_id in self.rooms:
            room_id = new_room_id()
        room = Room(
            room_id=room_id,
            mode=mode,
            chat_history=deque(maxlen=self.settings.rooms.chat_history),
        )
        if expires:
            room.expires_at = time.monotonic() + self.settings.rooms.empty_room_ttl_seconds
        self.rooms[room_id] = room
        log.info("room created: %s (%s)", room_id, mode)
        for hook in self.on_room_created:
            hook(room)
        return room

    def delete(self, room_id: str) -> Room | None:
        room = self.rooms.pop(room_id, None)
        if room is None:
            return None
        for participant in room.participants.values():
            self._by_sid.pop(participant.sid, None)
        room.participants.clear()
        log.info("room deleted: %s", room_id)
        for hook in self.on_room_deleted:
            hook(room)
        return room

    def sweep_expired(self, now: float | None = None) -> list[str]:
        """Delete rooms made by the REST API whose first joiner never came."""
        now = time.monotonic() if now is None else now
        gone = [
            r.room_id
            for r in self.rooms.values()
            if not r.participants and r.expires_at is not None and r.expires_at <= now
        ]
        for room_id in gone:
            self.delete(room_id)
        return gone

    # -- participants --------------------------------------------------------------------
    def locate(self, sid: str) -> tuple[Room, Participant] | None:
        """The room and participant bound to a socket, if it has joined."""
        where = self._by_sid.get(sid)
        if where is None:
            return None
        room = self.rooms.get(where[0])
        if room is None:
            return None
        participant = room.participants.get(where[1])
        return (room, participant) if participant else None

    def join(
        self,
        room_id: str,
        user_id: str,
        user_name: str,
        sid: str,
        mode: Mode | None = None,
        media: MediaState | None = None,
        *,
        by: str | None = None,
        successor_of: Participant | None = None,
        rejoin_token: str | None = None,
    ) -> tuple[Room, Participant, bool]:
        """Add a participant; creates the room when absent. Returns (room, participant, created).

        ``by`` is the client's address (for the room-creation limit); ``successor_of`` the
        participant this socket replaces after proving it is the same user (rejoin token),
        whose rights it takes over; ``rejoin_token`` the token the client brought, which
        gives the creator's right back to a creator whose old socket is already gone.
        """
        if sid in self._by_sid:
            raise Refusal("already_joined", "this connection is already in a room")
        room = self.rooms.get(room_id)
        created = False
        if room is not None:
            if user_id in room.participants:
                raise Refusal("user_id_taken", f"user id {user_id!r} is in use in this room")
            if len(room.participants) >= self.settings.rooms.max_participants:
                raise Refusal("room_full", "the room is full")
        else:
            room = self.create(room_id, mode or self.settings.rooms.default_mode, by=by)
            created = True
        participant = Participant(
            user_id=user_id, user_name=user_name, sid=sid, media=media or MediaState()
        )
        if successor_of is not None:
            participant.is_creator = successor_of.is_creator
            if participant.is_creator:  # its leaving just now left the token: spent
                room.creator_token = None
        elif not room.creator_assigned:
            participant.is_creator = room.creator_assigned = True
        elif (
            rejoin_token is not None
            and room.creator_token is not None
            and hmac.compare_digest(rejoin_token.encode(), room.creator_token.encode())
        ):
            participant.is_creator, room.creator_token = True, None
        room.expires_at = None
        room.participants[user_id] = participant
        self._by_sid[sid] = (room.room_id, user_id)
        log.info("join: %s (%s) -> %s", user_id, user_name, room.room_id)
        return room, participant, created

    def leave(self, sid: str, keep_room: bool = False) -> tuple[Room, Participant] | None:
        """Remove a socket's participant; deletes a room left empty unless ``keep_room``."""
        where = self.locate(sid)
        self._by_sid.pop(sid, None)
        if where is None:
            return None
        room, participant = where
        room.participants.pop(participant.user_id, None)
        if participant.is_creator:
            room.creator_token = participant.rejoin_token
        log.info("leave: %s <- %s", participant.user_id, room.room_id)
        if not room.participants and not keep_room:
            self.delete(room.room_id)
        return room, participant

    def holder(self, room_id: str, user_id: str) -> Participant | None:
        """The participant that holds ``user_id`` in a room, if any."""
        room = self.rooms.get(room_id)
        return room.participants.get(user_id) if room is not None else None

    # -- figures -------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        by_mode = {m: {"rooms": 0, "participants": 0} for m in MODES}
        for room in self.rooms.values():
            by_mode[room.mode]["rooms"] += 1
            by_mode[room.mode]["participants"] += len(room.participants)
        return {
            "rooms": len(self.rooms),
            "participants": sum(len(r.participants) for r in self.rooms.values()),
            "byMode": by_mode,
        }
