"""Rooms and participants: the one place that knows who is where.

A room has a mode (``p2p`` or ``sfu``) fixed when it is created, a set of participants keyed by
their ``userId``, and a bounded chat history. The registry enforces the per-room and
per-server caps and binds each ``userId`` to the socket that joined with it.

Access (docs/security.md): a room's access policy and password hash, its lock and lobby,
the bans of removed participants, and each participant's role and grants. Roles belong to a
participant's connection (and its rejoins), never to a ``userId`` a later joiner can take;
when the last moderator leaves, the longest-present participant becomes one.
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

from sfu.access.grants import DEFAULT, Grants
from sfu.ratelimit import KeyedBuckets
from sfu.refusal import Refusal
from sfu.settings import Settings

if TYPE_CHECKING:  # the media layer is not imported by the room layer, only named
    from sfu.media import Router

log = logging.getLogger("sfu.rooms")

Mode = Literal["p2p", "sfu"]
MODES: tuple[Mode, ...] = ("p2p", "sfu")
Access = Literal["open", "password", "token"]
ACCESS: tuple[Access, ...] = ("open", "password", "token")  # each stricter than the one before
Role = Literal["moderator", "participant"]
ROLES: tuple[Role, ...] = ("moderator", "participant")
MAX_MODERATOR_TOKENS = 32  # departed moderators' rejoin tokens kept per room


def stricter(a: Access, b: Access) -> Access:
    return a if ACCESS.index(a) >= ACCESS.index(b) else b


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
    # Bound to this socket (and its rejoins), never to the user id, which a later joiner
    # could take once this participant has left.
    role: Role = "participant"
    # From the join token, else the defaults (sfu/access/grants.py).
    grants: Grants = DEFAULT
    # Joined with a verified join token (its ``sub`` is the user id).
    by_token: bool = False
    # Given only to this participant (join answer): lets its next socket replace this one.
    rejoin_token: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    hand_raised_at: int | None = None  # ms since the epoch while the hand is up (#18)
    # Recording the meeting in its own browser (the app's local recording), as it says (#18).
    local_recording: bool = False

    @property
    def is_moderator(self) -> bool:
        return self.role == "moderator"

    def public(self) -> dict[str, Any]:
        """The participant as other clients see it."""
        return {
            "userId": self.user_id,
            "userName": self.user_name,
            "media": self.media.as_dict(),
            "role": self.role,
            "handRaisedAt": self.hand_raised_at,
            "localRecording": self.local_recording,
        }


@dataclass
class Knock:
    """A joiner waiting in a locked room's lobby for a moderator."""

    request_id: str
    sid: str
    user_id: str
    user_name: str
    at: float = field(default_factory=time.monotonic)
    admitted: bool = False  # its next join-room is let in once

    def public(self) -> dict[str, Any]:
        return {"requestId": self.request_id, "userName": self.user_name}


@dataclass
class Room:
    """A meeting: its mode, participants and recent chat."""

    room_id: str
    mode: Mode
    chat_history: deque[dict[str, Any]]
    # The meeting's display name ("Weekly design review"), given when it is made; None: unnamed.
    name: str | None = None
    created_at: float = field(default_factory=time.time)
    # Whether the creator's moderator role has been given: once, to the first joiner.
    creator_assigned: bool = False
    # Departed moderators' last rejoin tokens: a join that brings one takes the role back
    # (a reconnect after the server had already dropped the old socket).
    moderator_tokens: list[str] = field(default_factory=list)
    participants: dict[str, Participant] = field(default_factory=dict)
    # Who may enter (never looser than rooms.access), the password's argon2 hash, the cap.
    access: Access = "open"
    password_hash: str | None = None
    max_participants: int | None = None
    locked: bool = False
    lobby: dict[str, Knock] = field(default_factory=dict)  # request id -> knock
    # Removed participants' user ids (a token's identity) -> until when (monotonic).
    bans: dict[str, float] = field(default_factory=dict)
    # Rooms made by POST /api/rooms wait this long (monotonic) for a first joiner.
    expires_at: float | None = None
    # Set by the layers above: the SFU room's media router (sfu/server/media_events.py), the token
    # that reads its recordings and whether auto_start has fired (sfu/recording/rooms.py).
    router: Router | None = None
    recording_token: str | None = None
    recording_auto_started: bool = False

    def others(self, user_id: str) -> list[Participant]:
        return [p for p in self.participants.values() if p.user_id != user_id]

    def moderators(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.is_moderator]

    def banned_for(self, user_id: str, now: float | None = None) -> float:
        """Seconds left of ``user_id``'s ban from this room (0: none)."""
        now = time.monotonic() if now is None else now
        for who, until in list(self.bans.items()):
            if until <= now:
                del self.bans[who]
        return max(0.0, self.bans.get(user_id, now) - now)

    def durable(self) -> dict[str, Any]:
        """What outlives this process (the room directory, sfu/cluster): settings, chat,
        who may take the moderator role back. Present moderators' rejoin tokens are counted
        as departed ones, so the role survives a restart that drops them."""
        now_wall, now = time.time(), time.monotonic()
        tokens = [*self.moderator_tokens, *(p.rejoin_token for p in self.moderators())]
        return {
            "roomId": self.room_id,
            "name": self.name,
            "mode": self.mode,
            "createdAt": self.created_at,
            "creatorAssigned": self.creator_assigned,
            "moderatorTokens": tokens[-MAX_MODERATOR_TOKENS:],
            "access": self.access,
            "passwordHash": self.password_hash,
            "maxParticipants": self.max_participants,
            "locked": self.locked,
            "chatHistory": list(self.chat_history),
            "bans": {who: now_wall + until - now for who, until in self.bans.items()},
            "recordingToken": self.recording_token,
            "participants": len(self.participants),  # for listings; not restored
        }

    def summary(self) -> dict[str, Any]:
        return {
            "roomId": self.room_id,
            "roomName": self.name,
            "mode": self.mode,
            "participants": len(self.participants),
            "createdAt": self.created_at,
        }


# Lower-case letters without i, l and o: an id read aloud or copied by hand is not mistaken
# (no I/l/1, O/0); three groups of four, as Google Meet's "abc-defg-hij".
ROOM_ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz"


def new_room_id() -> str:
    """A random room id that is hard to guess (23^12, about 2^54) and easy to read:
    ``"xkcd-pqrs-tuvw"``."""
    letters = "".join(secrets.choice(ROOM_ID_ALPHABET) for _ in range(12))
    return "-".join(letters[i : i + 4] for i in range(0, 12, 4))


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
        self,
        room_id: str | None,
        mode: Mode,
        *,
        expires: bool = False,
        by: str | None = None,
        access: Access = "open",
        password_hash: str | None = None,
        max_participants: int | None = None,
        name: str | None = None,
    ) -> Room:
        """Create an empty room; ``expires`` gives it the empty-room grace period.

        ``name``: its display name, already validated (``Limits.room_name``).

        ``access`` is made no looser than ``rooms.access``; a password room needs its hash.

        ``by`` is the client address asking (None: the administrator); each address may
        create ``rooms.create_per_minute`` rooms a minute (bursts of 5), however it asks.
        """
        if mode not in MODES:
            raise Refusal("invalid_payload", "mode must be 'p2p' or 'sfu'")
        access = stricter(access, self.settings.rooms.access)
        if access == "password" and password_hash is None:
            raise Refusal("password_required", "a password room needs a password: choose one")
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
            name=name,
            access=access,
            password_hash=password_hash,
            max_participants=max_participants,
        )
        if expires:
            room.expires_at = time.monotonic() + self.settings.rooms.empty_room_ttl_seconds
        self.rooms[room_id] = room
        log.info("room created: %s (%s, access %s)", room_id, mode, access)
        for hook in self.on_room_created:
            hook(room)
        return room

    def restore(self, doc: dict[str, Any]) -> Room:
        """Re-creates a room from :meth:`Room.durable` (another node's, or this node's before
        a restart). It waits for a first joiner like a room made by the REST API."""
        room = self.create(
            doc["roomId"],
            doc["mode"],
            expires=True,
            access=doc.get("access", "open"),
            password_hash=doc.get("passwordHash"),
            max_participants=doc.get("maxParticipants"),
            name=doc["name"] if isinstance(doc.get("name"), str) else None,
        )
        room.created_at = float(doc.get("createdAt", room.created_at))
        room.creator_assigned = bool(doc.get("creatorAssigned", False))
        room.moderator_tokens = [str(t) for t in doc.get("moderatorTokens", [])]
        room.locked = bool(doc.get("locked", False))
        room.chat_history.extend(doc.get("chatHistory", []))
        now_wall, now = time.time(), time.monotonic()
        room.bans = {
            who: now + until - now_wall
            for who, until in doc.get("bans", {}).items()
            if until > now_wall
        }
        if doc.get("recordingToken"):
            room.recording_token = str(doc["recordingToken"])
        log.info("room restored: %s (%s, access %s)", room.room_id, room.mode, room.access)
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
        grants: Grants = DEFAULT,
        by_token: bool = False,
        create: dict[str, Any] | None = None,
    ) -> tuple[Room, Participant, bool]:
        """Add a participant; creates the room when absent. Returns (room, participant, created).

        ``by`` is the client's address (for the room-creation limit); ``successor_of`` the
        participant this socket replaces after proving it is the same user (rejoin token),
        whose rights it takes over; ``rejoin_token`` the token the client brought, which
        gives the moderator role back to a moderator whose old socket is already gone;
        ``grants`` come from a join token (``moderate`` makes a moderator); ``create`` holds
        :meth:`create`'s access arguments for a room this join makes. Access checks
        (tokens, passwords, the lobby) are the caller's, before this.
        """
        if sid in self._by_sid:
            raise Refusal("already_joined", "this connection is already in a room")
        room = self.rooms.get(room_id)
        created = False
        if room is not None:
            if user_id in room.participants:
                raise Refusal("user_id_taken", f"user id {user_id!r} is in use in this room")
            if len(room.participants) >= self.capacity(room):
                raise Refusal("room_full", "the room is full")
        else:
            room = self.create(
                room_id, mode or self.settings.rooms.default_mode, by=by, **(create or {})
            )
            created = True
        participant = Participant(
            user_id=user_id,
            user_name=user_name,
            sid=sid,
            media=media or MediaState(),
            grants=grants,
            by_token=by_token,
        )
        spent = self._take_moderator_token(room, rejoin_token)
        if successor_of is not None:
            participant.role = successor_of.role
            participant.joined_at = successor_of.joined_at  # still the same presence
        elif not room.creator_assigned:
            participant.role = "moderator"
            room.creator_assigned = True
        elif spent or grants.moderate:
            participant.role = "moderator"
        room.expires_at = None
        room.participants[user_id] = participant
        self._by_sid[sid] = (room.room_id, user_id)
        log.info("join: %s (%s) -> %s", user_id, user_name, room.room_id)
        return room, participant, created

    def leave(
        self, sid: str, keep_room: bool = False, removed: bool = False
    ) -> tuple[Room, Participant] | None:
        """Remove a socket's participant; deletes a room left empty unless ``keep_room``.

        ``removed``: by a moderator; its rejoin token gives no role back."""
        where = self.locate(sid)
        self._by_sid.pop(sid, None)
        if where is None:
            return None
        room, participant = where
        room.participants.pop(participant.user_id, None)
        if participant.is_moderator and not removed:
            room.moderator_tokens = [
                *room.moderator_tokens[-(MAX_MODERATOR_TOKENS - 1) :],
                participant.rejoin_token,
            ]
        log.info("leave: %s <- %s", participant.user_id, room.room_id)
        if not room.participants and not keep_room:
            self.delete(room.room_id)
        return room, participant

    def capacity(self, room: Room) -> int:
        cap = self.settings.rooms.max_participants
        return min(cap, room.max_participants) if room.max_participants else cap

    @staticmethod
    def _take_moderator_token(room: Room, token: str | None) -> bool:
        """Spends a departed moderator's rejoin token, if ``token`` is one."""
        if token is None:
            return False
        for kept in room.moderator_tokens:
            if hmac.compare_digest(token.encode(), kept.encode()):
                room.moderator_tokens.remove(kept)
                return True
        return False

    def hand_over(self, room: Room) -> Participant | None:
        """With participants and no moderator left, the longest-present becomes one."""
        if not room.participants or room.moderators():
            return None
        heir = min(room.participants.values(), key=lambda p: p.joined_at)
        heir.role = "moderator"
        log.info("moderator handover in %s: %s (longest present)", room.room_id, heir.user_id)
        return heir

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
