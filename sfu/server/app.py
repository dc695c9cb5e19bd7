"""Builds the aiohttp application: Socket.IO, the REST API and the web app on one port."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from sfu import __version__
from sfu.cluster import Cluster
from sfu.metrics import Metrics
from sfu.recording.rooms import RoomRecordings
from sfu.rooms import RoomRegistry
from sfu.server.cluster_events import ClusterEvents
from sfu.server.http_edge import edge_middleware, host_warning
from sfu.server.media_events import MediaRooms
from sfu.server.moderation import Moderation
from sfu.server.recording_events import RecordingEvents
from sfu.server.rest import Api
from sfu.server.signaling import Signaling
from sfu.settings import Settings

log = logging.getLogger("sfu.server")

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # sfu/
WEB_DIR = PACKAGE_DIR / "web"  # `npm run build` in client/ writes here
PLACEHOLDER = PACKAGE_DIR / "placeholder.html"
# Paths that belong to the server, never to the single-page app's fallback.
_SERVER_PREFIXES = ("/api/", "/socket.io", "/health", "/stats", "/metrics")

APP_KEY = web.AppKey("sfu", object)


class Server:
    """Everything one running server holds: settings, rooms, signaling, API."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started = time.monotonic()
        self.metrics = Metrics()
        self.rooms = RoomRegistry(settings)
        self.metrics.add_room_stats(self.rooms.stats)
        self.signaling = Signaling(settings, self.rooms, self.metrics)
        self.media = MediaRooms(settings, self.rooms, self.signaling)
        self.moderation = Moderation(settings, self.rooms, self.signaling)
        self.moderation.stop_screen = self.media.stop_screen
        self.recordings = RoomRecordings(
            settings, self.rooms, self._recording_state, uplinks=self.media
        )
        self.recording_events = RecordingEvents(self.recordings, self.signaling, settings)
        self.api = Api(
            settings,
            self.rooms,
            self.signaling,
            self.started,
            self.metrics.render,
            self.moderation,
        )
        self.api.on_settings_changed.append(self._settings_changed)
        self.api.on_settings_changed.append(self.recordings.settings_changed)
        # Several nodes, one set of rooms (server.redis_url; docs/deployment.md).
        self.cluster: Cluster | None = None
        self.cluster_events: ClusterEvents | None = None
        if settings.server.redis_url is not None:
            self.cluster = Cluster(settings, self.rooms)
            self.metrics.set_node(self.cluster.node_id)
            self.cluster_events = ClusterEvents(self.cluster, self.rooms, self.signaling)
            self.api.node_health = self._node_health
            self.api.on_created = self.cluster.enter
            self.api.cluster_rooms = self.cluster.listing
            self.api.cluster_stats = self.cluster.figures
            self.api.elsewhere = self.cluster.elsewhere
        self._sweeper: asyncio.Task[None] | None = None

    def _node_health(self) -> dict[str, Any]:
        assert self.cluster is not None
        return {
            "node": self.cluster.node_id,
            "redis": "ok" if self.cluster.reachable else "unreachable",
        }

    async def _recording_state(self, room_id: str, state: dict[str, Any]) -> None:
        await self.signaling.sio.emit("recording-state", state, room=room_id)

    def _settings_changed(self, keys: list[str]) -> None:
        if "server.log_level" in keys:
            logging.getLogger("sfu").setLevel(self.settings.server.log_level)

    def static_dir(self) -> Path | None:
        chosen = self.settings.server.static_dir or WEB_DIR
        return chosen if (chosen / "index.html").is_file() else None

    async def spa(self, request: web.Request) -> web.StreamResponse:
        """The web app: a built file if it exists, else index.html (client-side routes)."""
        path = request.match_info.get("path", "")
        if ("/" + path).startswith(_SERVER_PREFIXES):
            raise web.HTTPNotFound()
        root = self.static_dir()
        if root is None:
            return web.FileResponse(PLACEHOLDER)
        try:
            candidate = (root / path).resolve()
            found = bool(path) and candidate.is_file() and candidate.is_relative_to(root.resolve())
        except (OSError, ValueError):  # a name too long, a NUL byte: no such file
            found = False
        if found:
            return web.FileResponse(candidate)
        return web.FileResponse(root / "index.html", headers={"Cache-Control": "no-cache"})

    def build_app(self) -> web.Application:
        # The edge middleware wraps every route, Socket.IO's too (sio.attach adds plain routes).
        app = web.Application(client_max_size=1024**2, middlewares=[edge_middleware(self.settings)])
        app[APP_KEY] = self
        self.signaling.sio.attach(app)
        self.api.add_routes(app)
        self.recording_events.add_routes(app, self.api.is_admin)
        app.router.add_get("/{path:.*}", self.spa)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_startup(self, app: web.Application) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever())
        # A recording whose writer died with the last process gets its real duration.
        recovered = await asyncio.to_thread(self.recordings.store.recover)
        if recovered:
            log.info("recovered %d interrupted recordings: %s", len(recovered), recovered)
        await self.recordings.start_background()
        if self.cluster is not None:
            await self.cluster.start()
        warning = host_warning(self.settings)
        if warning:
            log.warning(warning)
        log.info(
            "sfu %s listening on http://%s:%d (web app: %s)",
            __version__,
            self.settings.server.host,
            self.settings.server.port,
            self.static_dir() or "placeholder",
        )

    async def _on_shutdown(self, app: web.Application) -> None:
        log.info("shutting down: telling %d participants", self.rooms.stats()["participants"])
        if self._sweeper:
            self._sweeper.cancel()
        # First finish every recording's file (and tell its room): SIGTERM leaves them complete.
        await self.recordings.close()
        if self.cluster is not None:  # rooms released first: rejoins find them free
            await self.cluster.stop()
        await self.signaling.shutdown()
        for room_id in list(self.rooms.rooms):
            self.rooms.delete(room_id)
        await self.media.close()
        if self.cluster is not None:
            await self.cluster.close()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(5)
            self.rooms.sweep_expired()


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("sfu").setLevel(level)


def run(settings: Settings, worker: bool = False) -> int:
    """Serve until SIGINT or SIGTERM; returns the process exit code (0 on a clean stop).

    ``worker``: one of ``sfu serve --workers N`` (sfu/server/workers.py): the port is shared
    with the other workers (SO_REUSEPORT), so each new TCP connection goes to any of them,
    and Engine.IO takes WebSocket only (long-polling's requests would land on different
    workers; the app opens a WebSocket first).
    """
    configure_logging(settings.server.log_level)
    server = Server(settings)
    if worker:
        server.signaling.sio.eio.transports = ["websocket"]
    app = server.build_app()
    # What start-up made (modules, settings, the app) lives as long as the process: out of
    # the collector's sight, so a full collection walks only what the meetings made (with
    # Redis and ~1,000 sockets, join p99 170 -> 31 ms: docs/performance.md).
    gc.collect()
    gc.freeze()
    web.run_app(
        app,
        host=settings.server.host,
        port=settings.server.port,
        reuse_port=worker or None,
        print=None,
        # Everything that matters (recordings finished, participants told and disconnected)
        # is done in _on_shutdown before this wait; it only bounds lingering handlers.
        shutdown_timeout=1,
        access_log=None,
    )
    log.info("stopped")
    return 0
