"""Pre-encoded media (sfu/replay.py): the clip, and the checker that knows each forwarded
frame by its checksum, fed the packets aiortc's own VP8 packetizer makes of the clip."""

from __future__ import annotations

import fractions
import zlib

import av
import pytest
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import RtpPacket

from sfu.loadtest import read_number
from sfu.replay import FPS, FrameChecker, VideoClip


@pytest.fixture(scope="module")
def clip() -> VideoClip:
    return VideoClip.encode(320, 240, noise=40, frames=60)


def packets_of(clip: VideoClip, numbers: list[int], first_seq: int = 65530) -> list[RtpPacket]:
    """Each frame number as RTP packets, as a publisher's aiortc sender makes them."""
    encoder = Vp8Encoder()
    out: list[RtpPacket] = []
    seq = first_seq
    for n in numbers:
        packet = av.Packet(clip.frames[n % len(clip.frames)])
        packet.pts, packet.time_base = n * 3000, fractions.Fraction(1, 90000)
        payloads, timestamp = encoder.pack(packet)
        for i, payload in enumerate(payloads):
            out.append(
                RtpPacket(
                    payload_type=96,
                    marker=int(i == len(payloads) - 1),
                    sequence_number=seq & 0xFFFF,
                    timestamp=timestamp,
                    payload=payload,
                )
            )
            seq += 1
    return out


def check(clip: VideoClip, packets: list[RtpPacket], latest: int) -> list[tuple[int | None, bool]]:
    got: list[tuple[int | None, bool]] = []
    checker = FrameChecker(clip, lambda: latest, lambda n, clean: got.append((n, clean)))
    firsts = {p.timestamp: p for p in reversed(packets)}  # each frame's first packet
    for p in packets:
        key = firsts[p.timestamp] is p and clip.keyframes[p.timestamp // 3000 % len(clip.frames)]
        checker.on_packet(p, key)
    return got


def test_the_clip_loops_from_a_keyframe_and_shows_its_numbers(clip: VideoClip) -> None:
    assert len(clip.frames) == 60 and len(clip.by_crc) == 60
    assert [i for i, key in enumerate(clip.keyframes) if key] == [0, FPS]
    decoder = av.CodecContext.create("libvpx", "r")
    numbers = []
    for data in clip.frames[:5]:
        for frame in decoder.decode(av.Packet(data)):
            numbers.append(read_number(frame.to_ndarray(format="gray"))[0])
    assert numbers == [0, 1, 2, 3, 4]
    assert sum(map(len, clip.frames)) * 8 / (len(clip.frames) / FPS) > 200_000  # noise: a real rate


def test_whole_frames_are_known_in_the_loop(clip: VideoClip) -> None:
    # Frames 118..122 of the publisher: clip frames 58, 59, 0, 1, 2 (the loop and seq wrap).
    numbers = [118, 119, 120, 121, 122]
    assert check(clip, packets_of(clip, numbers), latest=125) == [(n, True) for n in numbers]


def test_a_missing_packet_damages_its_frame_and_the_next_ones(clip: VideoClip) -> None:
    packets = packets_of(clip, [0, 1, 2])
    firsts = [i for i, p in enumerate(packets) if p.marker]
    assert firsts[0] > 0, "the keyframe takes several packets"
    del packets[1]  # the middle of the keyframe
    assert check(clip, packets, latest=2) == [(None, False), (1, False), (2, False)]


def test_a_duplicate_is_ignored_and_a_lost_marker_ends_the_frame(clip: VideoClip) -> None:
    packets = packets_of(clip, [3, 4, 5])
    dup = packets[:2] + [packets[0]] + packets[2:]
    assert check(clip, dup, latest=5) == [(3, True), (4, True), (5, True)]
    end_of_3 = next(i for i, p in enumerate(packets) if p.marker)
    del packets[end_of_3]
    assert check(clip, packets, latest=5) == [(None, False), (4, False), (5, False)]


def test_foreign_bytes_are_not_a_frame(clip: VideoClip) -> None:
    packets = packets_of(clip, [6])
    last = packets[-1]
    packets[-1] = RtpPacket(
        payload_type=96,
        marker=1,
        sequence_number=last.sequence_number,
        timestamp=last.timestamp,
        payload=last.payload[:-1] + bytes([last.payload[-1] ^ 1]),
    )
    assert check(clip, packets, latest=6) == [(None, False)]
    assert zlib.crc32(clip.frames[6]) in clip.by_crc


def test_after_a_lost_frame_the_next_keyframe_is_clean_again(clip: VideoClip) -> None:
    packets = packets_of(clip, [27, 28, 29, 30, 31])  # 30 is a keyframe
    lost = [p for p in packets if p.timestamp != 28 * 3000]
    assert check(clip, lost, latest=31) == [(27, True), (29, False), (30, True), (31, True)]
