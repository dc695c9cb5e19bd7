"""REST handlers for recordings: list, metadata, downloads (with HTTP Range), thumbnails,
delete.

Access is the caller's policy: ``authorize(request)`` says whom the request's credentials (an
``Authorization`` header or a ``token`` query parameter) name, as a :class:`Grant`, or None
when they name nobody. The answers tell an outsider nothing about what exists:

- no credentials, or credentials that name nobody: 401 on every route;
- a recording the credentials may not read: 404, exactly like an id that does not exist;
- deleting without the administrator's grant: 403, before any lookup.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sfu.recording.store import RecordingStore, valid_id
from sfu.server.http_errors import error


@dataclass(frozen=True)
class Grant:
    """What some credentials allow: everything (``admin``), or reading what ``reads`` accepts."""

    admin: bool
    reads: Callable[[dict[str, Any]], bool]


Authorize = Callable[[web.Request], Grant | None]

STORE_KEY: web.AppKey[RecordingStore] = web.AppKey("recording_store", RecordingStore)
_INDEX = re.compile(r"[0-9]{1,6}")  # ASCII only: str.isdigit() also takes "²", which int() refuses


def has_credentials(request: web.Request) -> bool:
    return bool(request.headers.get("Authorization") or request.query.get("token"))


def add_routes(app: web.Application, store: RecordingStore, authorize: Authorize) -> None:
    """Mount ``/api/recordings`` routes on ``app``."""

    def grant(request: web.Request) -> Grant:
        if not has_credentials(request):
            raise error("unauthorized", "credentials required: the admin or a room's token")
        found = authorize(request)
        if found is None:
            raise error("unauthorized", "this token is unknown or no longer valid")
        return found

    def lookup(request: web.Request, *, delete: bool = False) -> dict[str, Any]:
        who = grant(request)
        if delete and not who.admin:
            raise error("forbidden", "only the administrator may delete recordings")
        recording_id = request.match_info["id"]
        if not valid_id(recording_id):
            raise error("invalid_payload", "invalid recording id")
        meta = store.get(recording_id)
        if meta is None or not who.reads(meta):
            raise error("unknown_recording", "no such recording")
        return meta

    async def list_recordings(request: web.Request) -> web.Response:
        who = grant(request)
        return web.json_response({"recordings": [m for m in store.list() if who.reads(m)]})

    async def get_recording(request: web.Request) -> web.Response:
        return web.json_response(lookup(request))

    async def download(request: web.Request) -> web.StreamResponse:
        meta = lookup(request)
        path = store.file_path(meta["id"])
        if path is None:
            raise error("not_found", "the recording's file is missing")
        # FileResponse answers Range requests (206 + Content-Range) and If-Range itself.
        return web.FileResponse(
            path, headers={"Content-Disposition": f'attachment; filename="{path.name}"'}
        )

    async def thumbnail(request: web.Request) -> web.StreamResponse:
        meta = lookup(request)
        path = store.thumbnail_path(meta["id"])
        if path is None:  # made when the file is complete (or never: audio only, no picture)
            raise error("not_found", "the recording has no thumbnail (yet)")
        # Inline (an <img>), private: it shows the meeting, like the file it is taken from.
        return web.FileResponse(
            path, headers={"Content-Type": "image/jpeg", "Cache-Control": "private, max-age=3600"}
        )

    async def download_raw(request: web.Request) -> web.StreamResponse:
        meta = lookup(request)
        index = request.match_info["index"]
        path = store.raw_track_path(meta["id"], int(index)) if _INDEX.fullmatch(index) else None
        if path is None:
            raise error("not_found", "no such track")
        return web.FileResponse(
            path, headers={"Content-Disposition": f'attachment; filename="{path.name}"'}
        )

    async def delete(request: web.Request) -> web.Response:
        meta = lookup(request, delete=True)
        if meta["id"] in store.active:
            raise error("recording_in_progress", "the recording is still being made; stop it first")
        if not store.delete(meta["id"]):
            raise error("unknown_recording", "no such recording")
        return web.Response(status=204)

    app[STORE_KEY] = store
    app.router.add_get("/api/recordings", list_recordings)
    app.router.add_get("/api/recordings/{id}", get_recording)
    app.router.add_get("/api/recordings/{id}/file", download)
    app.router.add_get("/api/recordings/{id}/thumbnail", thumbnail)
    app.router.add_get("/api/recordings/{id}/tracks/{index}", download_raw)
    app.router.add_delete("/api/recordings/{id}", delete)
