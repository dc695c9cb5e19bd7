"""Moderation events: roles, mute and screen-share requests, removal, lock, end, the lobby.

Every action needs the moderator role (the creator's, a token's ``moderate`` grant, one given
by a moderator, or the handover); each is logged once (who did what to whom) and told to
the room as ``moderation`` (the app's toasts). The administrator's REST routes come here too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sfu.refusal import Refusal
from sfu.rooms import Participant, Room, RoomRegistry
from sfu.server.signaling import Signaling
from sfu.settings import Settings
from sfu.validation import (
    LobbyAdmitIn,
    LobbyDenyIn,
    LockRoomIn,
    MuteParticipantIn,
    RemoveParticipantIn,
    SetRoleIn,
    TargetIn,
    parse,
)

log = logging.getLogger("sfu.server.moderation")

# Closes a participant's screen producers in an SFU room (sfu/server/media_events.py).
StopScreen = Callable[[Room, Participant], Awaitable[None]]


class Moderation:
    """The moderation events of one server."""

    def __init__(self, settings: Settings, rooms: RoomRegistry, signaling: Signaling) -> None:
        self.settings = settings
        self.rooms = rooms
        self.signaling = signaling
        self.stop_screen: StopScreen | None = None
        for name, handler in (
            ("set-role", self._set_role),
            ("mute-participant", self._mute),
            ("stop-screen-share", self._stop_screen_share),
            ("remove-participant", self._remove),
            ("lock-room", self._lock),
            ("end-meeting", self._end),
            ("lobby-admit", self._lobby_admit),
            ("lobby-deny", self._lobby_deny),
        ):
            signaling.register_event(name, "other", handler)

    # -- who ------------------------------------------------------------------------------
    def _moderator(self, sid: str) -> tuple[Room, Participant]:
        where = self.rooms.locate(sid)
        if where is None:
            raise Refusal("not_in_room", "join a room first")
        if not where[1].is_moderator:
            raise Refusal("forbidden", "needs the moderate grant")
        return where

    def _target(self, room: Room, user_id: str) -> Participant:
        target = room.participants.get(user_id)
        if target is None:
            raise Refusal("unknown_participant", "no such participant in your room")
        return target

    async def _told(
        self,
        room: Room,
        action: str,
        by: Participant | None,
        target: Participant | None = None,
        detail: Any = None,
        target_name: str | None = None,
    ) -> None:
        """Logs the action once and tells the room (``moderation``)."""
        who = f"{by.user_id} ({by.user_name})" if by else "the administrator"
        whom = f" {target.user_id} ({target.user_name})" if target else ""
        if target is None and target_name:
            whom = f" {target_name}"
        log.info(
            "moderation in %s: %s %s%s%s",
            room.room_id,
            who,
            action,
            whom,
            f" [{detail}]" if detail is not None else "",
        )
        event: dict[str, Any] = {
            "action": action,
            "by": by.user_id if by else None,
            "byName": by.user_name if by else None,
        }
        if target is not None:
            event.update(target=target.user_id, targetName=target.user_name)
        elif target_name is not None:
            event["targetName"] = target_name
        if detail is not None:
            event["detail"] = detail
        await self.signaling.sio.emit("moderation", event, room=room.room_id)

    # -- events ---------------------------------------------------------------------------
    async def _set_role(self, sid: str, data: Any) -> dict[str, Any]:
        msg = parse(SetRoleIn, data)
        room, by = self._moderator(sid)
        target = self._target(room, msg.userId)
        if target.role == msg.role:
            return {"role": target.role}
        if msg.role == "participant" and room.moderators() == [target]:
            raise Refusal("forbidden", "the room needs a moderator: make someone else one first")
        target.role = msg.role
        await self.signaling.role_changed(room, target, by)
        await self._told(room, "set-role", by, target, msg.role)
        return {"role": target.role}

    async def _mute(self, sid: str, data: Any) -> None:
        msg = parse(MuteParticipantIn, data)
        room, by = self._moderator(sid)
        target = self._target(room, msg.userId)
        await self.signaling.sio.emit(
            "mute-requested",
            {"kind": msg.kind, "by": by.user_id, "byName": by.user_name},
            to=target.sid,
        )
        await self._told(room, "mute", by, target, msg.kind)

    async def _stop_screen_share(self, sid: str, data: Any) -> None:
        msg = parse(TargetIn, data)
        room, by = self._moderator(sid)
        target = self._target(room, msg.userId)
        await self.signaling.sio.emit(
            "screen-share-stop-requested",
            {"by": by.user_id, "byName": by.user_name},
            to=target.sid,
        )
        if self.stop_screen is not None:
            await self.stop_screen(room, target)
        await self._told(room, "stop-screen-share", by, target)

    async def _remove(self, sid: str, data: Any) -> dict[str, Any]:
        msg = parse(RemoveParticipantIn, data)
        reason = self.signaling.limits.reason(msg.reason)
        room, by = self._moderator(sid)
        target = self._target(room, msg.userId)
        if target is by:
            raise Refusal("invalid_payload", "you cannot remove yourself: leave the room instead")
        return await self.remove(room, target, by, reason)

    async def remove(
        self, room: Room, target: Participant, by: Participant | None, reason: str | None
    ) -> dict[str, Any]:
        """Takes ``target`` out of the room and bans its identity for a while."""
        ban = self.settings.rooms.removal_ban_seconds
        if ban > 0:
            room.banned_for(target.user_id)  # forgets lapsed bans first (bounded)
            room.bans[target.user_id] = time.monotonic() + ban
        await self.signaling.sio.emit(
            "removed",
            {
                "by": by.user_id if by else None,
                "byName": by.user_name if by else None,
                "reason": reason,
                "banSeconds": ban,
            },
            to=target.sid,
        )
        await self.signaling.depart(target.sid, why="removed", removed=True)
        await self._told(room, "remove", by, target, reason)
        return {"userId": target.user_id, "banSeconds": ban}

    async def _lock(self, sid: str, data: Any) -> dict[str, Any]:
        msg = parse(LockRoomIn, data)
        room, by = self._moderator(sid)
        return await self.lock(room, msg.locked, by)

    async def lock(self, room: Room, locked: bool, by: Participant | None) -> dict[str, Any]:
        room.locked = locked
        await self.signaling.sio.emit(
            "room-locked",
            {
                "locked": locked,
                "by": by.user_id if by else None,
                "byName": by.user_name if by else None,
            },
            room=room.room_id,
        )
        await self._told(room, "lock" if locked else "unlock", by)
        if not locked:  # unlocking lets in whoever is waiting
            for knock in [k for k in room.lobby.values() if not k.admitted]:
                await self.signaling.admit(room, knock, by)
        return {"locked": locked}

    async def _end(self, sid: str, data: Any) -> None:
        if data is not None and not isinstance(data, dict):
            raise Refusal("invalid_payload", "payload must be an object")
        room, by = self._moderator(sid)
        await self._told(room, "end-meeting", by)
        await self.signaling.close_room(room, "ended", by=by)

    async def _lobby_admit(self, sid: str, data: Any) -> None:
        msg = parse(LobbyAdmitIn, data)
        room, by = self._moderator(sid)
        knock = self.signaling.knock(room, msg.requestId)
        await self.signaling.admit(room, knock, by)
        await self._told(room, "lobby-admit", by, target_name=knock.user_name)

    async def _lobby_deny(self, sid: str, data: Any) -> None:
        msg = parse(LobbyDenyIn, data)
        reason = self.signaling.limits.reason(msg.reason)
        room, by = self._moderator(sid)
        knock = self.signaling.knock(room, msg.requestId)
        message = f"{by.user_name} did not let you in" + (f": {reason}" if reason else "")
        await self.signaling.deny(room, knock, by, "denied", message)
        await self._told(room, "lobby-deny", by, target_name=knock.user_name, detail=reason)
