"""The RTP fixed header and RFC 8285 one-byte header extensions, read and written in place.

What the forwarding path needs per packet, without a general parser: the receive side reads
the payload type, sequence number, timestamp and two extensions (abs-send-time, the RFC 6464
audio level); the send side writes a subscriber's header. Anything unusual (padding,
CSRCs, two-byte or malformed extensions) is refused (None), for a general parser to judge.
"""

from __future__ import annotations

import struct

# The fixed header: V/P/X/CC, M/PT, sequence number, timestamp, SSRC (RFC 3550 5.1).
pack_header = struct.Struct("!BBHLL").pack
unpack_seq_ts = struct.Struct("!HL").unpack_from  # at offset 2
_UNPACK_EXT = struct.Struct("!HH").unpack_from
_ONE_BYTE_PROFILE = 0xBEDE


def read_extensions(
    packet: bytes, abs_send_time_id: int | None, audio_level_id: int | None
) -> tuple[int, int | None, int | None] | None:
    """Where the payload starts, the abs-send-time (24 bits) and the audio level byte.

    For a packet without padding or CSRCs (the caller checks the first byte). None when
    the packet is too short, the extension block is not one-byte (RFC 8285 4.2) or runs
    past the packet, an element is truncated, or the two known elements have the wrong
    size. The ids are the negotiated ones (None: not negotiated).
    """
    if len(packet) < 12:
        return None
    if not packet[0] & 0x10:
        return 12, None, None
    if len(packet) < 16:
        return None
    profile, words = _UNPACK_EXT(packet, 12)
    end = 16 + 4 * words
    if profile != _ONE_BYTE_PROFILE or end > len(packet):
        return None
    abs_send_time = level = None
    pos = 16
    while pos < end:
        first = packet[pos]
        pos += 1
        if first == 0:  # padding between elements
            continue
        ext_id, size = first >> 4, (first & 0x0F) + 1
        if pos + size > end:
            return None
        if ext_id == abs_send_time_id:
            if size != 3:
                return None
            abs_send_time = int.from_bytes(packet[pos : pos + 3])
        elif ext_id == audio_level_id:
            if size != 1:
                return None
            level = packet[pos]
        pos += size
    return end, abs_send_time, level
