"""The one exception for a refused request: a protocol error code and a message for people.

Every layer raises it (payload checks, the room registry, the media router, recordings);
the edges turn it into the Socket.IO acknowledgement ``{ok: false, error, message}`` or the
REST error body ``{error, message}``. Every code is listed in docs/protocol.md.
"""

from __future__ import annotations


class Refusal(Exception):
    """A request refused: nothing changed; ``code`` says why to programs, ``message`` to people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
