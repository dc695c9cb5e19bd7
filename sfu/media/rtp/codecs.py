"""What the forwarder needs to know about a codec's bytes: where a keyframe starts.

One detector per codec, for whole frames (what the recorder and the raw writer see) and for
single RTP payloads (what the forwarder sees: it never reassembles). VP8 per RFC 6386 and
RFC 7741; H.264 per RFC 6184 (Annex B frames, single NAL unit, STAP-A and FU-A payloads).
"""

from __future__ import annotations

_VP8_START_CODE = b"\x9d\x01\x2a"
_H264_KEY_NALS = (5, 7)  # an IDR slice, or a sequence parameter set (it precedes one)
_H264_STAP_A = 24
_H264_FU_A = 28


def vp8_keyframe(frame: bytes) -> bool:
    """RFC 6386 9.1: frame tag bit 0 is 0 for a key frame, then the start code 9d 01 2a."""
    return len(frame) >= 10 and not frame[0] & 1 and frame[3:6] == _VP8_START_CODE


def vp8_size(frame: bytes) -> tuple[int, int] | None:
    """Width and height of a VP8 keyframe (RFC 6386 9.1), None for any other frame."""
    if not vp8_keyframe(frame):
        return None
    return (frame[6] | frame[7] << 8) & 0x3FFF, (frame[8] | frame[9] << 8) & 0x3FFF


def h264_keyframe(frame: bytes) -> bool:
    """An Annex B access unit whose first NAL units hold an IDR slice or an SPS."""
    pos = 0
    for _ in range(8):
        pos = frame.find(b"\x00\x00\x01", pos)
        if pos < 0 or pos + 3 >= len(frame):
            return False
        if frame[pos + 3] & 0x1F in _H264_KEY_NALS:
            return True
        pos += 3
    return False


def is_keyframe(codec: str, frame: bytes) -> bool:
    """Whether an encoded frame can be decoded on its own (audio frames always can)."""
    if codec == "VP8":
        return vp8_keyframe(frame)
    if codec == "H264":
        return h264_keyframe(frame)
    return True


def guess_video_codec(frame: bytes) -> str:
    """H.264 for an Annex B frame (it opens with a start code), else VP8."""
    return "H264" if frame[:3] == b"\x00\x00\x01" or frame[:4] == b"\x00\x00\x00\x01" else "VP8"


def vp8_payload_starts_keyframe(payload: bytes) -> bool:
    """Whether an RTP payload (RFC 7741) is the first packet of a VP8 keyframe.

    The payload descriptor's S bit and partition index 0 mark a frame's first packet; its
    optional fields (X: I, L, T/K; picture id of 7 or 15 bits) are skipped to reach the
    VP8 payload header, whose frame tag says key or inter frame.
    """
    if len(payload) < 1 or payload[0] & 0x17 != 0x10:  # S = 1, PID = 0
        return False
    pos = 1
    if payload[0] & 0x80:  # X: an extension byte follows
        if len(payload) < 2:
            return False
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: picture id, M bit for 15 bits
            if len(payload) <= pos:
                return False
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX
            pos += 1
    return vp8_keyframe(payload[pos:])


def h264_payload_starts_keyframe(payload: bytes) -> bool:
    """Whether an RTP payload (RFC 6184) begins an IDR slice or an SPS: a single NAL unit,
    a STAP-A holding one, or the first fragment (S bit) of an FU-A carrying one."""
    if not payload:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type == _H264_FU_A:
        return len(payload) >= 2 and bool(payload[1] & 0x80) and payload[1] & 0x1F in _H264_KEY_NALS
    if nal_type == _H264_STAP_A:
        pos = 1
        while pos + 2 < len(payload):
            size = payload[pos] << 8 | payload[pos + 1]
            if size == 0 or pos + 2 + size > len(payload):
                return False
            if payload[pos + 2] & 0x1F in _H264_KEY_NALS:
                return True
            pos += 2 + size
        return False
    return nal_type in _H264_KEY_NALS


def payload_starts_keyframe(codec: str, payload: bytes) -> bool:
    """Whether one RTP payload is the first packet of a keyframe of ``codec``."""
    if codec == "VP8":
        return vp8_payload_starts_keyframe(payload)
    if codec == "H264":
        return h264_payload_starts_keyframe(payload)
    return False
