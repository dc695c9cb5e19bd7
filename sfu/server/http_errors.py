"""The one shape of every REST error: ``{"error": CODE, "message": "human readable"}``.

Every route and the HTTP edge raise :func:`error`. It imports nothing else of sfu, so the
lower layers (``sfu.recording``) use it as well as the API.
"""

from __future__ import annotations

import json

from aiohttp import web
from multidict import CIMultiDict

# Every REST error code and its HTTP status (docs/protocol.md lists them all).
STATUS: dict[str, int] = {
    "invalid_payload": 400,
    "invalid_setting": 400,
    "invalid_host": 400,
    "not_sfu_room": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "forbidden_origin": 403,
    "not_found": 404,
    "unknown_room": 404,
    "unknown_recording": 404,
    "method_not_allowed": 405,
    "room_exists": 409,
    "already_recording": 409,
    "not_recording": 409,
    "recording_in_progress": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "rate_limited": 429,
    "internal_error": 500,
    "recording_failed": 500,
    "too_many_rooms": 503,
    "service_unavailable": 503,
    "other_node": 421,
}


class ApiError(web.HTTPException):
    """A REST refusal; raise it from a handler or a middleware."""

    def __init__(
        self, code: str, message: str, status: int, headers: CIMultiDict[str] | None = None
    ) -> None:
        self.status_code = status  # read by HTTPException.__init__
        self.code = code
        super().__init__(
            text=json.dumps({"error": code, "message": message}),
            content_type="application/json",
            headers=headers,
        )


def error(
    code: str, message: str, status: int | None = None, headers: dict[str, str] | None = None
) -> ApiError:
    """The refusal to raise: ``raise error("unknown_room", "no such room")``.

    The status comes from :data:`STATUS` unless given (an unlisted code is a client error,
    400). Every 401 says how to authenticate, as HTTP requires.
    """
    status = status or STATUS.get(code, 400)
    merged: CIMultiDict[str] = CIMultiDict(headers or {})
    if status == 401:
        merged.setdefault("WWW-Authenticate", "Bearer")
    return ApiError(code, message, status, merged)
