"""REST handlers for recordings: list, metadata, downloads (with HTTP Range), delete.

Access is the caller's policy: ``check_access(request, meta) -> bool`` (an admin bearer token,
a per-room token ...). A request without credentials (no ``Authorization`` header and no
``token`` query parameter) gets 401; with credentials that do not grant access, 403.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from sfu.recording.store import RecordingStore, valid_id

CheckAccess = Callable[[web.Request, dict[str, Any]], bool]

STORE_KEY: web.AppKey[RecordingStore] = web.AppKey("recording_store", RecordingStore)


def _has_credentials(request: web.Request) -> bool:
    return bool(request.headers.get("Authorization") or request.query.get("token"))


def _error(status: type[web.HTTPException], message: str) -> web.HTTPException:
    return status(text=f'{{"error": "{message}"}}', content_type="application/json")


def add_routes(app: web.Application, store: RecordingStore, check_access: CheckAccess) -> None:
    """Mount ``/api/recordings`` routes on ``app``."""

    def lookup(request: web.Request) -> dict[str, Any]:
        recording_id = request.match_info["id"]
        if not valid_id(recording_id):
            raise _error(web.HTTPBadRequest, "invalid recording id")
        if not _has_credentials(request):
            raise _error(web.HTTPUnauthorized, "credentials required")
        meta = store.get(recording_id)
        if meta is None:
            raise _error(web.HTTPNotFound, "no such recording")
        if not check_access(request, meta):
            raise _error(web.HTTPForbidden, "not allowed")
        return meta

    async def list_recordings(request: web.Request) -> web.Response:
        if not _has_credentials(request):
            raise _error(web.HTTPUnauthorized, "credentials required")
        items = [m for m in store.list() if check_access(request, m)]
        return web.json_response({"recordings": items})

    async def get_recording(request: web.Request) -> web.Response:
        return web.json_response(lookup(request))

    async def download(request: web.Request) -> web.StreamResponse:
        meta = lookup(request)
        path = store.file_path(meta["id"])
        if path is None:
            raise _error(web.HTTPNotFound, "file missing")
        # FileResponse answers Range requests (206 + Content-Range) and If-Range itself.
        return web.FileResponse(
            path, headers={"Content-Disposition": f'attachment; filename="{path.name}"'}
        )

    async def download_raw(request: web.Request) -> web.StreamResponse:
        meta = lookup(request)
        index = request.match_info["index"]
        path = store.raw_track_path(meta["id"], int(index)) if index.isdigit() else None
        if path is None:
            raise _error(web.HTTPNotFound, "no such track")
        return web.FileResponse(
            path, headers={"Content-Disposition": f'attachment; filename="{path.name}"'}
        )

    async def delete(request: web.Request) -> web.Response:
        meta = lookup(request)
        if meta["id"] in store.active:
            raise _error(web.HTTPConflict, "recording in progress")
        if not store.delete(meta["id"]):
            raise _error(web.HTTPNotFound, "no such recording")
        return web.Response(status=204)

    app[STORE_KEY] = store
    app.router.add_get("/api/recordings", list_recordings)
    app.router.add_get("/api/recordings/{id}", get_recording)
    app.router.add_get("/api/recordings/{id}/file", download)
    app.router.add_get("/api/recordings/{id}/tracks/{index}", download_raw)
    app.router.add_delete("/api/recordings/{id}", delete)
