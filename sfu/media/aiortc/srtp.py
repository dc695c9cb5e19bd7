"""libsrtp called through pylibsrtp's binding with one shared buffer (per packet: no
allocation)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pylibsrtp import Error as SrtpError
from pylibsrtp import Session as SrtpSession
from pylibsrtp._binding import ffi as _srtp_ffi
from pylibsrtp._binding import lib as _srtp_lib

logger = logging.getLogger(__name__)

# One buffer for every SRTP call made here (all on the event loop's thread): pylibsrtp's
# own calls allocate a length per call and use a buffer per session, more memory touched
# per packet. Limits as pylibsrtp's: a 1500-byte buffer, room left for the longest trailer.
_SRTP_BUFFER_SIZE = 1500
_SRTP_MAX_TRAILER = 16 + 128  # pylibsrtp's SRTP_MAX_TRAILER_LEN
_SRTP_BUFFER = _srtp_ffi.new("char[]", _SRTP_BUFFER_SIZE)
_SRTP_VIEW = _srtp_ffi.buffer(_SRTP_BUFFER)
_SRTP_LENGTH = _srtp_ffi.new("int *")


def srtp_call(session: Any, operation: str) -> Callable[[bytes], bytes]:
    """``session.protect`` or ``session.unprotect`` (SRTP, not SRTCP): for a pylibsrtp
    Session, libsrtp called directly with the shared buffer; other objects' own method."""
    if not isinstance(session, SrtpSession):
        return getattr(session, operation)  # e.g. a test's stand-in
    protect = operation == "protect"
    function = _srtp_lib.srtp_protect if protect else _srtp_lib.srtp_unprotect
    largest = _SRTP_BUFFER_SIZE - (_SRTP_MAX_TRAILER if protect else 0)
    context = session._srtp[0]
    view, buffer, length = _SRTP_VIEW, _SRTP_BUFFER, _SRTP_LENGTH

    def call(data: bytes, session: SrtpSession = session) -> bytes:  # keeps session alive
        size = len(data)
        if size > largest:
            raise ValueError("packet is too long")
        view[0:size] = data
        length[0] = size
        result = function(context, buffer, length)
        if result:
            raise SrtpError(f"libsrtp error {result}")
        return view[0 : length[0]]

    return call
