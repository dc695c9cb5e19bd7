"""Gives every SFU room its media router and routes the room's ``sfu-*`` events to it.

The router (sfu/media/router.py) knows nothing of Socket.IO; this module binds the two: a
participant's server-initiated media messages go to its socket, its ``sfu-*`` events go to
the router of its room, and joins, leaves and deleted rooms open and close media sessions.

A P2P room gets a router only while it is recorded (#19, the *uplink*): its participants
keep their mesh and also publish to the server, which offers them nothing (the recorder is
the only consumer); ``open_uplink`` and ``close_uplink`` are asked by the recordings.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sfu.media import Router
from sfu.refusal import Refusal
from sfu.rooms import Participant, Room, RoomRegistry
from sfu.server.signaling import Signaling
from sfu.settings import Settings

log = logging.getLogger("sfu.server.media_events")


class MediaRooms:
    """The SFU side of the room registry."""

    def __init__(self, settings: Settings, rooms: RoomRegistry, signaling: Signaling) -> None:
        self.settings = settings
        self.rooms = rooms
        self.signaling = signaling
        self._closing: set[asyncio.Task[None]] = set()
        rooms.on_room_created.append(self._room_created)
        rooms.on_room_deleted.append(self._room_deleted)
        signaling.on_join.append(self._joined)
        signaling.on_leave.append(self._left)
        for event in Router.CLIENT_EVENTS:
            signaling.register_sfu_event(event, self._handler(event))
        signaling.join_extras.append(self._join_extras)

    def _join_extras(self, room: Room, participant: Participant) -> dict[str, Any]:
        """An SFU room's join answer tells the app the camera's simulcast encodings
        (``simulcast``: RTCRtpEncodingParameters, lowest first), unless it is off."""
        sfu = self.settings.sfu
        if room.mode != "sfu" or not sfu.simulcast or sfu.video_codec != "VP8":
            return {}
        return {
            "simulcast": [
                {
                    "rid": layer.rid,
                    "scaleResolutionDownBy": layer.scale_down,
                    "maxBitrate": layer.max_bitrate_kbps * 1000,
                }
                for layer in sfu.simulcast_layers
            ]
        }

    @staticmethod
    def router(room: Room) -> Router | None:
        return room.router

    def _room_created(self, room: Room) -> None:
        if room.mode == "sfu":
            room.router = Router(self.settings, room.room_id)

    def _room_deleted(self, room: Room) -> None:
        router, room.router = room.router, None
        if router is not None:
            task = asyncio.ensure_future(router.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _joined(self, room: Room, participant: Participant) -> None:
        router = self.router(room)
        if router is not None:
            await self._join_router(router, room, participant)

    async def _join_router(self, router: Router, room: Room, participant: Participant) -> None:
        sid = participant.sid

        async def send(event: str, payload: dict[str, Any]) -> None:
            await self.signaling.sio.emit(event, payload, to=sid)

        # No downlink without the subscribe grant (#13), nor in a P2P room (the mesh).
        receives = room.mode == "sfu" and participant.grants.subscribe
        await router.join(participant.user_id, send, receives=receives)

    async def open_uplink(self, room: Room) -> Router:
        """A P2P room being recorded: a router its participants publish to (the present
        ones now, later ones as they join). An SFU room's own router as it is."""
        router = self.router(room)
        if router is not None:
            return router
        router = Router(self.settings, room.room_id)
        room.router = router
        for participant in list(room.participants.values()):
            await self._join_router(router, room, participant)
        log.info("room %s: P2P recording uplink opened", room.room_id)
        return router

    async def close_uplink(self, room: Room) -> None:
        """The recording of a P2P room ended: its participants' server connections close."""
        if room.mode == "sfu" or room.router is None:
            return
        router, room.router = room.router, None
        await router.close()
        log.info("room %s: P2P recording uplink closed", room.room_id)

    async def _left(self, room: Room, participant: Participant) -> None:
        router = self.router(room)
        if router is not None:
            await router.leave(participant.user_id)

    def _handler(self, event: str):  # noqa: ANN202 - a Signaling handler
        async def handle(sid: str, data: Any) -> dict[str, Any]:
            where = self.rooms.locate(sid)
            if where is None:
                raise Refusal("not_in_room", "join a room first")
            room, participant = where
            router = self.router(room)
            if router is None:
                raise Refusal("not_sfu_room", "this room is not in SFU mode")
            if room.mode != "sfu" and event in ("sfu-subscribe", "sfu-subscribe-answer"):
                raise Refusal(
                    "not_sfu_room", "a P2P room's server connection only publishes (recording)"
                )
            await self.signaling.check_media(room, participant, event, data)  # grants (#13)
            return await router.handle(participant.user_id, event, data)

        return handle

    async def stop_screen(self, room: Room, participant: Participant) -> None:
        """A moderator stopped this participant's screen share: its screen tracks stop
        being forwarded (#13)."""
        router = self.router(room)
        if router is not None:
            router.stop_sources(participant.user_id, "screen")

    async def close(self) -> None:
        """Waits for routers being closed (server shutdown)."""
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
