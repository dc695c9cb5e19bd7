"""REST routes: health, stats, metrics, rooms and the admin API.

Thin like the signaling layer: validate, call the room registry, shape the reply. Errors are
raised with :func:`sfu.server.http_errors.error`: ``{"error": CODE, "message": ...}`` with a fitting
HTTP status.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sfu import __version__
from sfu.access import passwords
from sfu.media import turn
from sfu.ratelimit import KeyedBuckets
from sfu.refusal import Refusal
from sfu.rooms import Room, RoomRegistry, stricter
from sfu.server.http_edge import client_address, is_admin, require_admin
from sfu.server.http_errors import error
from sfu.server.media_events import MediaRooms
from sfu.server.moderation import Moderation
from sfu.server.signaling import Signaling
from sfu.settings import Settings, SettingsError, apply_changes, flatten
from sfu.validation import CreateRoomIn, parse

log = logging.getLogger("sfu.server.rest")

LOOKUP_BURST = 10  # GET /api/rooms/{id} at once per address before the per-minute rate
# Live changes of these give every participant a new iceServers list at once.
ICE_KEYS = frozenset({"ice.servers", "ice.turn_secret", "ice.turn_ttl_seconds"})


class Api:
    """The REST API of one server."""

    def __init__(
        self,
        settings: Settings,
        rooms: RoomRegistry,
        signaling: Signaling,
        started: float,
        render_metrics: Callable[[], bytes],
        moderation: Moderation,
    ) -> None:
        self.settings = settings
        self.rooms = rooms
        self.signaling = signaling
        self.started = started
        self.render_metrics = render_metrics
        self.moderation = moderation
        # Who may learn whether a room exists, and how fast (non-admin lookups).
        self.lookup_limit = KeyedBuckets(settings.limits.room_lookups_per_minute / 60, LOOKUP_BURST)
        # Each effective-settings change, newest last (shown in /stats).
        self.settings_changes: list[dict[str, Any]] = []
        # Called with the applied keys after PATCH /api/settings (e.g. log level).
        self.on_settings_changed: list[Callable[[list[str]], Awaitable[None] | None]] = []
        # With a cluster: this node's id and whether Redis answers ({"node", "redis"}).
        self.node_health: Callable[[], dict[str, Any]] | None = None
        # With a cluster: enters a room made here in the directory, or refuses (and
        # deletes) it when another node has that id (POST /api/rooms).
        self.on_created: Callable[[Room], Awaitable[None]] | None = None
        # With a cluster: every node's rooms, each with its ``node`` (GET /api/rooms).
        self.cluster_rooms: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None
        # With a cluster: the directory's document of a room another living node runs
        # (``owner`` added), or None.
        self.elsewhere: Callable[[str], Awaitable[dict[str, Any] | None]] | None = None
        # With a cluster: every living node's figures (GET /stats).
        self.cluster_stats: Callable[[], Awaitable[dict[str, Any]]] | None = None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/health", self.health)
        app.router.add_get("/stats", self.stats)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/api/config", self.config)
        app.router.add_post("/api/rooms", self.create_room)
        app.router.add_get("/api/rooms", self.list_rooms)
        app.router.add_get("/api/rooms/{room_id}", self.get_room)
        app.router.add_delete("/api/rooms/{room_id}", self.close_room)
        app.router.add_get("/api/rooms/{room_id}/participants", self.list_participants)
        app.router.add_delete(
            "/api/rooms/{room_id}/participants/{user_id}", self.remove_participant
        )
        app.router.add_post("/api/rooms/{room_id}/lock", self.lock_room)
        app.router.add_get("/api/settings", self.get_settings)
        app.router.add_patch("/api/settings", self.patch_settings)

    # -- auth ------------------------------------------------------------------------------
    def is_admin(self, request: web.Request) -> bool:
        return is_admin(request, self.settings)

    def _require_admin(self, request: web.Request) -> None:
        require_admin(request, self.settings)

    # -- public ----------------------------------------------------------------------------
    def uptime(self) -> float:
        return round(time.monotonic() - self.started, 3)

    async def health(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = {
            "status": "ok",
            "version": __version__,
            "uptimeSeconds": self.uptime(),
        }
        if self.node_health is not None:
            # Degraded, not down: live rooms go on without Redis, only new joins are refused.
            body.update(self.node_health())
            if body.get("redis") != "ok":
                body["status"] = "degraded"
        return web.json_response(body)

    async def stats(self, request: web.Request) -> web.Response:
        body = {**self.rooms.stats(), "uptimeSeconds": self.uptime()}
        if self.node_health is not None:
            body["node"] = self.node_health()["node"]
        if self.cluster_stats is not None:
            try:
                body["cluster"] = await self.cluster_stats()
            except Refusal:  # Redis away: this node's figures only
                body["cluster"] = None
        body["settingsChanges"] = self.settings_changes[-20:]
        return web.json_response(body)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.render_metrics(), content_type="text/plain", charset="utf-8")

    async def config(self, request: web.Request) -> web.Response:
        limits = self.settings.limits
        return web.json_response(
            {
                # STUN only: TURN servers and their credentials go to joined participants.
                "iceServers": turn.public_ice_servers(self.settings.ice),
                "defaultMode": self.settings.rooms.default_mode,
                "access": self.settings.rooms.access,
                "createOnJoin": self.settings.rooms.create_on_join,
                "limits": {
                    "idMaxLength": limits.id_max_length,
                    "nameMaxLength": limits.name_max_length,
                    "chatMaxLength": limits.chat_max_length,
                },
                "version": __version__,
            }
        )

    async def create_room(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise error("invalid_payload", "body must be JSON") from exc
        admin = self.is_admin(request)
        if not admin and self.settings.rooms.access == "token":
            raise error("unauthorized", "admin token required: rooms here are made by tokens")
        try:
            msg = parse(CreateRoomIn, data)
            limits = self.signaling.limits
            room_id = limits.ident(msg.roomId, "roomId") if msg.roomId is not None else None
            name = limits.room_name(msg.name, "name")
            access = msg.access or ("password" if msg.password is not None else "open")
            access = stricter(access, self.settings.rooms.access)
            hashed = None
            if access == "password":
                if msg.password is None:
                    raise Refusal("password_required", "a password room needs a password")
                hashed = await passwords.hash_password(limits.password(msg.password))
            room = self.rooms.create(
                room_id,
                msg.mode,
                expires=True,
                by=None if admin else client_address(request, self.settings),
                access=access,
                password_hash=hashed,
                max_participants=msg.maxParticipants,
                name=name,
            )
            if self.on_created is not None:
                await self.on_created(room)
        except Refusal as exc:
            raise error(exc.code, exc.message) from exc
        body: dict[str, Any] = {
            "roomId": room.room_id,
            "roomName": room.name,
            "mode": room.mode,
            "access": room.access,
        }
        if room.max_participants:
            body["maxParticipants"] = self.rooms.capacity(room)
        return web.json_response(body, status=201)

    async def _room(self, request: web.Request) -> Room:
        room_id = request.match_info["room_id"]
        room = self.rooms.get(room_id)
        if room is None:
            doc = await self.elsewhere(room_id) if self.elsewhere is not None else None
            if doc is not None:  # a room of another node: acted on there, not here
                raise error(
                    "other_node", f"room {room_id!r} runs on node {doc['owner']!r}: ask that node"
                )
            raise error("unknown_room", "no such room")
        return room

    async def _elsewhere(self, room_id: str) -> dict[str, Any] | None:
        if self.elsewhere is None or self.rooms.get(room_id) is not None:
            return None
        return await self.elsewhere(room_id)

    def _allow_lookup(self, request: web.Request) -> bool:
        rate = self.settings.limits.room_lookups_per_minute / 60
        if self.lookup_limit.rate != rate:  # changed live (PATCH /api/settings)
            self.lookup_limit = KeyedBuckets(rate, LOOKUP_BURST)
        return self.lookup_limit.allow(client_address(request, self.settings))

    async def get_room(self, request: web.Request) -> web.Response:
        admin = self.is_admin(request)
        # Each answer says whether a room exists: throttled, or room ids could be enumerated.
        if not admin and not self._allow_lookup(request):
            raise error("rate_limited", "too many room lookups from your address; wait a minute")
        elsewhere = await self._elsewhere(request.match_info["room_id"])
        if elsewhere is not None:  # another node's room: what the directory knows of it
            access = stricter(elsewhere.get("access", "open"), self.settings.rooms.access)
            there: dict[str, Any] = {
                "roomId": elsewhere["roomId"],
                "roomName": elsewhere.get("name"),
                "mode": elsewhere["mode"],
                "access": access,
            }
            if admin or access == "open":
                there["participants"] = elsewhere.get("participants", 0)
            if admin:
                there.update(
                    locked=elsewhere.get("locked", False),
                    createdAt=elsewhere.get("createdAt"),
                    node=elsewhere["owner"],
                )
            return web.json_response(there)
        room = await self._room(request)
        access = stricter(room.access, self.settings.rooms.access)
        body: dict[str, Any] = {
            "roomId": room.room_id,
            "roomName": room.name,
            "mode": room.mode,
            "access": access,
        }
        if admin or access == "open":  # who is inside is for those who may enter
            body["participants"] = len(room.participants)
        if admin:
            body["locked"] = room.locked
            body["createdAt"] = room.created_at
            body["participantList"] = [p.public() for p in room.participants.values()]
            router = MediaRooms.router(room)
            if router is not None:
                body["media"] = router.stats()
        return web.json_response(body)

    # -- admin -----------------------------------------------------------------------------
    async def list_rooms(self, request: web.Request) -> web.Response:
        self._require_admin(request)
        rooms = [r.summary() for r in self.rooms.rooms.values()]
        if self.cluster_rooms is not None:
            try:
                rooms = await self.cluster_rooms()
            except Refusal as exc:  # Redis away: this node's rooms, and say so
                log.warning("room listing without the directory: %s", exc.message)
        return web.json_response({"rooms": rooms})

    async def close_room(self, request: web.Request) -> web.Response:
        self._require_admin(request)
        room = await self._room(request)
        await self.signaling.close_room(room, reason="closed by the administrator")
        return web.json_response({"closed": True, "roomId": room.room_id})

    async def list_participants(self, request: web.Request) -> web.Response:
        self._require_admin(request)
        room = await self._room(request)
        people = [
            {
                "userId": p.user_id,
                "userName": p.user_name,
                "role": p.role,
                "joinedAt": p.joined_at,
            }
            for p in room.participants.values()
        ]
        return web.json_response({"roomId": room.room_id, "participants": people})

    async def remove_participant(self, request: web.Request) -> web.Response:
        self._require_admin(request)
        room = await self._room(request)
        reason = None
        if request.can_read_body:
            try:
                data = await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise error("invalid_payload", "body must be JSON") from exc
            if not isinstance(data, dict) or not isinstance(data.get("reason", ""), str):
                raise error("invalid_payload", 'body must be {"reason": "..."} or empty')
            try:
                reason = self.signaling.limits.reason(data.get("reason"))
            except Refusal as exc:
                raise error(exc.code, exc.message) from exc
        target = room.participants.get(request.match_info["user_id"])
        if target is None:
            raise error("unknown_participant", "no such participant in this room", status=404)
        answer = await self.moderation.remove(room, target, None, reason)
        return web.json_response({"removed": True, "roomId": room.room_id, **answer})

    async def lock_room(self, request: web.Request) -> web.Response:
        self._require_admin(request)
        room = await self._room(request)
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise error("invalid_payload", "body must be JSON") from exc
        if not isinstance(data, dict) or not isinstance(data.get("locked"), bool):
            raise error("invalid_payload", 'body must be {"locked": true|false}')
        answer = await self.moderation.lock(room, data["locked"], None)
        return web.json_response({"roomId": room.room_id, **answer})

    async def get_settings(self, request: web.Request) -> web.Response:
        self._require_admin(request)
        return web.json_response({"settings": flatten(self.settings)})

    async def patch_settings(self, request: web.Request) -> web.Response:
        self._require_admin(request)
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise error("invalid_payload", "body must be JSON") from exc
        changes = data.get("changes") if isinstance(data, dict) else None
        if not isinstance(changes, dict) or not changes:
            raise error("invalid_payload", 'body must be {"changes": {"section.key": value}}')
        try:
            applied, restart = apply_changes(self.settings, changes)
        except SettingsError as exc:
            raise error("invalid_setting", str(exc)) from exc
        shown = flatten(self.settings)  # secrets masked, in the log line too
        log.info("settings changed: %s", ", ".join(f"{k}={shown[k]!r}" for k in changes))
        self.settings_changes.append({"keys": list(changes), "at": time.time()})
        if ICE_KEYS.intersection(applied):
            await self.signaling.ice_settings_changed()
        for hook in self.on_settings_changed:
            result = hook(applied)
            if result is not None:
                await result
        return web.json_response(
            {"applied": applied, "restart_required": restart, "settings": shown}
        )
