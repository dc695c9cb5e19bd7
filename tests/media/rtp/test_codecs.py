"""The one keyframe detector per codec (sfu/media/rtp/codecs.py), frame and payload level."""

from __future__ import annotations

import pytest
from aiortc.codecs import depayload
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from sfu.media.rtp import codecs

VP8_KEY = b"\x10\x02\x00\x9d\x01\x2a\x80\x02\xe0\x01" + bytes(range(256)) * 8  # 640x480
VP8_INTER = b"\x31\x02\x00" + bytes(range(200))
H264_KEY = b"\x00\x00\x00\x01\x67\x42\x00\x1f" + b"\x00\x00\x00\x01\x65" + bytes(3000)
H264_INTER = b"\x00\x00\x00\x01\x41" + bytes(3000)
VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=99)

FRAMES = [
    ("VP8", VP8_KEY, True),
    ("VP8", VP8_INTER, False),
    ("VP8", VP8_KEY[:9], False),  # too short for the start code and size
    ("VP8", b"\x10\x02\x00\x00\x00\x00" + bytes(10), False),  # key bit, no start code
    ("H264", H264_KEY, True),
    ("H264", b"\x00\x00\x01\x65" + bytes(20), True),  # IDR with a 3-byte start code
    ("H264", b"\x00\x00\x00\x01", False),  # a start code and no NAL unit
    ("H264", H264_INTER, False),
    ("H264", b"", False),
    ("opus", b"\xfc\xff\xfe", True),  # audio frames always stand alone
]


@pytest.mark.parametrize(("codec", "frame", "key"), FRAMES)
def test_frame_keyframes(codec: str, frame: bytes, key: bool) -> None:
    assert codecs.is_keyframe(codec, frame) is key


def test_vp8_size_and_codec_guess() -> None:
    assert codecs.vp8_size(VP8_KEY) == (640, 480)
    assert codecs.vp8_size(VP8_INTER) is None
    assert codecs.guess_video_codec(H264_KEY) == "H264"
    assert codecs.guess_video_codec(b"\x00\x00\x01\x65") == "H264"
    assert codecs.guess_video_codec(VP8_KEY) == "VP8"


# RFC 7741 payload descriptors: (descriptor, frame, starts a keyframe)
VP8_PAYLOADS = [
    (b"\x10", VP8_KEY, True),  # S=1, PID=0, no extension
    (b"\x00", VP8_KEY, False),  # a continuation (S=0)
    (b"\x11", VP8_KEY, False),  # partition 1
    (b"\x10", VP8_INTER, False),
    (b"\x90\x80\x05", VP8_KEY, True),  # X, I with a 7-bit picture id
    (b"\x90\x80\x81\x23", VP8_KEY, True),  # X, I with a 15-bit picture id
    (b"\x90\xc0\x81\x23\x07", VP8_KEY, True),  # ... and L (TL0PICIDX)
    (b"\x90\xe0\x81\x23\x07\x40", VP8_KEY, True),  # ... and T (TID)
    (b"\x90\x10\x40", VP8_KEY, True),  # X with K only
    (b"\x90\xe0\x81\x23\x07\x40", VP8_INTER, False),
    (b"\x90", b"", False),  # X but no extension byte
    (b"\x90\x80", b"", False),  # I but no picture id
    (b"", b"", False),
]


@pytest.mark.parametrize(("descriptor", "frame", "start"), VP8_PAYLOADS)
def test_vp8_payloads(descriptor: bytes, frame: bytes, start: bool) -> None:
    assert codecs.payload_starts_keyframe("VP8", descriptor + frame) is start


def fu_a(nal_type: int, start: bool) -> bytes:
    return bytes([0x7C, (0x80 if start else 0) | nal_type]) + bytes(100)


H264_PAYLOADS = [
    (b"\x65" + bytes(50), True),  # a single IDR NAL unit
    (b"\x67\x42\x00\x1f", True),  # SPS
    (b"\x41" + bytes(50), False),  # a non-IDR slice
    (fu_a(5, True), True),
    (fu_a(5, False), False),  # a later fragment of the IDR
    (fu_a(1, True), False),
    (b"\x7c", False),  # FU-A without its header
    (b"\x18\x00\x04\x67\x42\x00\x1f\x00\x02\x68\xce", True),  # STAP-A: SPS + PPS
    (b"\x18\x00\x02\x09\xf0\x00\x03\x41\x00\x00", False),  # STAP-A: AUD + P slice
    (b"\x18\x00\x09\x67", False),  # STAP-A claiming more than it holds
    (b"\x18\x00\x00\x65", False),  # STAP-A with a zero size
    (b"", False),
]


@pytest.mark.parametrize(("payload", "start"), H264_PAYLOADS)
def test_h264_payloads(payload: bytes, start: bool) -> None:
    assert codecs.payload_starts_keyframe("H264", payload) is start


def test_audio_payloads_never_start_a_keyframe() -> None:
    assert not codecs.payload_starts_keyframe("opus", b"\xfc\xff")


@pytest.mark.parametrize("frame", [VP8_KEY, VP8_INTER])
def test_vp8_agrees_with_aiortcs_packetizer(frame: bytes) -> None:
    """Each packet aiortc's packetizer makes: a keyframe start exactly when it is the first
    packet (aiortc's depayloader sees the frame begin) of a keyframe."""
    for picture_id in (5, 300):  # 7- and 15-bit picture ids
        payloads = Vp8Encoder._packetize(frame, picture_id)
        starts = [codecs.payload_starts_keyframe("VP8", p) for p in payloads]
        assert starts == [codecs.is_keyframe("VP8", frame)] + [False] * (len(payloads) - 1)
        assert b"".join(depayload(VP8, p) for p in payloads) == frame


@pytest.mark.parametrize("frame", [H264_KEY, H264_INTER])
def test_h264_agrees_with_aiortcs_packetizer(frame: bytes) -> None:
    payloads = H264Encoder._packetize(H264Encoder._split_bitstream(frame))
    starts = [codecs.payload_starts_keyframe("H264", p) for p in payloads]
    depayloaded = [codecs.is_keyframe("H264", depayload(H264, p)) for p in payloads]
    assert starts == depayloaded
    assert any(starts) is codecs.is_keyframe("H264", frame)
