"""The RTP header and one-byte extensions (sfu/media/rtp/header.py), against aiortc's parser."""

from __future__ import annotations

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from sfu.media.rtp.header import pack_header, read_extensions, unpack_seq_ts

ABS, LEVEL = 3, 4  # negotiated ids
BASE = pack_header(0x90, 96, 513, 0x01020304, 0xAABBCCDD)  # X bit set


def block(*elements: bytes) -> bytes:
    body = b"".join(elements)
    body += b"\0" * (-len(body) % 4)
    return b"\xbe\xde" + (len(body) // 4).to_bytes(2) + body


CASES = [
    ("no extension", pack_header(0x80, 96, 1, 2, 3) + b"pay", (12, None, None)),
    ("abs-send-time", BASE + block(b"\x32\x01\x02\x03") + b"pay", (20, 0x010203, None)),
    ("audio level", BASE + block(b"\x40\x85") + b"pay", (20, None, 0x85)),
    (
        "both, mid first",
        BASE + block(b"\x10a", b"\x32\x0a\x0b\x0c", b"\x40\x7f") + b"p",
        (24, 0x0A0B0C, 0x7F),
    ),  # fmt: skip
    ("padding between", BASE + block(b"\x00\x00\x40\x05") + b"p", (20, None, 5)),
    ("other ids only", BASE + block(b"\x51\x00\x00") + b"p", (20, None, None)),
    ("too short", BASE[:10], None),
    ("X but no block", BASE + b"\xbe", None),
    ("two-byte profile", BASE + b"\x10\x00\x00\x01" + b"\x03\x01\x00\x00" + b"p", None),
    ("block past the end", BASE + b"\xbe\xde\x00\x05" + b"\x40\x05\x00\x00", None),
    ("truncated element", BASE + b"\xbe\xde\x00\x01" + b"\x1f\x00\x00\x00", None),
    ("abs-send-time of 2 bytes", BASE + block(b"\x31\x01\x02") + b"p", None),
    ("level of 2 bytes", BASE + block(b"\x41\x01\x02") + b"p", None),
]


@pytest.mark.parametrize(("name", "packet", "want"), CASES, ids=[c[0] for c in CASES])
def test_read_extensions(name: str, packet: bytes, want: object) -> None:
    assert read_extensions(packet, ABS, LEVEL) == want


def test_agrees_with_aiortcs_parser() -> None:
    """Packets aiortc serialises read back the same here as in aiortc's own parser."""
    ext_map = HeaderExtensionsMap()
    ext_map.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
                RTCRtpHeaderExtensionParameters(
                    id=ABS, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
                ),
                RTCRtpHeaderExtensionParameters(
                    id=LEVEL, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"
                ),
            ]
        )
    )
    for mid, abs_time, level in [("0", 123456, (True, 30)), (None, None, (False, 127)),
                                 ("video-1", 0xFFFFFF, None)]:  # fmt: skip
        packet = RtpPacket(payload_type=111, sequence_number=65535, timestamp=7, ssrc=9)
        packet.extensions.mid = mid
        packet.extensions.abs_send_time = abs_time
        packet.extensions.audio_level = level
        packet.payload = b"opus"
        data = packet.serialize(ext_map)
        parsed = RtpPacket.parse(data, ext_map)
        got = read_extensions(data, ABS, LEVEL)
        assert got is not None
        start, abs_read, level_read = got
        assert data[start:] == parsed.payload == b"opus"
        assert abs_read == parsed.extensions.abs_send_time
        want_level = None if level is None else (level[0] << 7 | level[1])
        assert level_read == want_level
        assert unpack_seq_ts(data, 2) == (65535, 7)
