"""The Socket.IO events and REST routes of room recordings (sfu/recording/rooms.py), in
SFU and P2P rooms alike.

``recording-start`` / ``recording-stop`` from moderators and holders of the ``record`` grant
(or anyone: ``recording.who_can_record``),
the recording state in every join answer, the admin's REST start, stop and prune, and the
recordings routes with their access policy: the admin token reads and deletes everything, a
room's token reads that room's recordings.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sfu.recording.rooms import RoomRecordings, parse_layout
from sfu.refusal import Refusal
from sfu.rooms import Participant, Room
from sfu.server import http_edge
from sfu.server import recording_routes as recording_http
from sfu.server.http_errors import error
from sfu.server.signaling import Signaling
from sfu.settings import Settings

ADMIN_GRANT = recording_http.Grant(admin=True, reads=lambda meta: True)


class RecordingEvents:
    """Binds :class:`RoomRecordings` to Socket.IO and REST."""

    def __init__(
        self, recordings: RoomRecordings, signaling: Signaling, settings: Settings
    ) -> None:
        self.recordings = recordings
        self.signaling = signaling
        self.settings = settings
        self.rooms = recordings.rooms
        signaling.on_join.append(recordings.participant_joined)
        signaling.on_leave.append(recordings.participant_left)
        signaling.join_extras.append(recordings.join_extras)
        signaling.register_event("recording-start", "other", self._on_start_event)
        signaling.register_event("recording-stop", "other", self._on_stop_event)

    # -- Socket.IO -------------------------------------------------------------------------
    def _who(self, sid: str) -> tuple[Room, Participant]:
        where = self.rooms.locate(sid)
        if where is None:
            raise Refusal("not_in_room", "join a room first")
        room, participant = where
        if not self.signaling.may_record(participant):
            raise Refusal("forbidden", "needs the record grant (or the moderator role)")
        return room, participant

    async def _on_start_event(self, sid: str, data: Any) -> dict[str, Any]:
        layout = parse_layout(data)
        room, participant = self._who(sid)
        active = await self.recordings.start(room.room_id, participant.user_id, layout)
        return {"recordingId": active.recorder.id}

    async def _on_stop_event(self, sid: str, data: Any) -> dict[str, Any]:
        if data is not None and not isinstance(data, dict):
            raise Refusal("invalid_payload", "payload must be an object")
        room, participant = self._who(sid)
        meta = await self.recordings.stop(
            room.room_id, reason=f"stopped by {participant.user_id}", by=participant
        )
        return {"recordingId": meta["id"]}

    # -- REST ------------------------------------------------------------------------------
    def add_routes(self, app: web.Application, is_admin: Callable[[web.Request], bool]) -> None:
        """Start/stop per room, prune, and the recordings routes with their access policy."""

        def require_admin(request: web.Request) -> None:
            http_edge.require_admin(request, self.settings)

        async def body(request: web.Request) -> Any:
            if not request.can_read_body:
                return None
            try:
                return await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise Refusal("invalid_payload", "body must be JSON") from exc

        async def start(request: web.Request) -> web.Response:
            require_admin(request)
            try:
                layout = parse_layout(await body(request))
                active = await self.recordings.start(request.match_info["room_id"], None, layout)
            except Refusal as exc:
                raise error(exc.code, exc.message) from exc
            return web.json_response({"roomId": active.room_id, **active.state()}, status=201)

        async def stop(request: web.Request) -> web.Response:
            require_admin(request)
            room_id = request.match_info["room_id"]
            if self.rooms.get(room_id) is None and room_id not in self.recordings.active:
                raise error("unknown_room", "no such room")
            try:
                meta = await self.recordings.stop(room_id, reason="stopped by the administrator")
            except Refusal as exc:
                raise error(exc.code, exc.message) from exc
            return web.json_response({"roomId": room_id, "recordingId": meta["id"], **meta})

        async def prune(request: web.Request) -> web.Response:
            require_admin(request)
            return web.json_response(
                {"deleted": await asyncio.to_thread(self.recordings.apply_retention)}
            )

        app.router.add_post("/api/rooms/{room_id}/recording", start)
        app.router.add_delete("/api/rooms/{room_id}/recording", stop)
        app.router.add_post("/api/recordings/prune", prune)
        recording_http.add_routes(app, self.recordings.store, self._authorizer(is_admin))

    def _authorizer(self, is_admin: Callable[[web.Request], bool]) -> recording_http.Authorize:
        """The admin token reads and deletes everything; a room's token reads that room's
        recordings (never deletes); any other credentials name nobody."""

        def authorize(request: web.Request) -> recording_http.Grant | None:
            if is_admin(request):
                return ADMIN_GRANT
            given = request.query.get("token", "")
            header = request.headers.get("Authorization", "")
            if header.startswith("Bearer "):
                given = header[7:]
            reads = self.recordings.reads_for(given)
            return None if reads is None else recording_http.Grant(admin=False, reads=reads)

        return authorize
