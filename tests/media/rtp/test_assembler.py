"""A producer's frames reassembled from its RTP packets (sfu/media/rtp/assembler.py).

Tables in the style of mediasoup's TestSeqManager.cpp: each row is one packet pushed (or a
loss given up, or a check of the state) and the frames that come out. Then a cross-check
against aiortc's own packetizers and depayloaders with real VP8 and H.264 streams, and a
decode of the assembled VP8 frames with PyAV.
"""

from __future__ import annotations

import fractions
import hashlib
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
import pytest
from aiortc.codecs import depayload
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from sfu.media.frames import EncodedFrame
from sfu.media.rtp.assembler import (
    FrameAssembler,
    capture_time,
    h264_depayload,
    vp8_depayload,
)
from sfu.media.rtp.loss import LossTracker
from sfu.media.rtp.seqmap import MAX_GAP

VP8_CODEC = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
H264_CODEC = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=99)
START = b"\x00\x00\x00\x01"


@dataclass
class Frame:
    """One frame of a test stream: its packets' payloads and the bytes that should come out."""

    label: str  # K... a keyframe, P... an inter frame, A... audio
    payloads: list[bytes]
    data: bytes
    seq: int | None = None  # the first packet's number (else: after the previous frame's)
    ts: int | None = None  # its RTP timestamp (else: 3000 after the previous frame's)
    marker: bool = True


def filler(label: str, size: int) -> bytes:
    return (hashlib.sha256(label.encode()).digest() * (size // 32 + 1))[:size]


def vp8_bytes(label: str) -> bytes:
    """A VP8 frame with the right frame tag (RFC 6386 9.1): key frames carry the start code."""
    if label.startswith("K"):
        return b"\x10\x02\x00\x9d\x01\x2a\x40\x00\x30\x00" + filler(label, 80)
    return b"\x31\x02\x00" + filler(label, 40)


def vp8(label: str, packets: int, descriptor: bytes = b"\x10", **kw: object) -> Frame:
    """A VP8 frame in ``packets`` packets (up to 9: a keyframe's first must hold its 10-byte
    header); ``descriptor`` of its first (S = 1), the others the same with S = 0."""
    data = vp8_bytes(label)
    step = -(-len(data) // packets)
    rest = bytes([descriptor[0] & ~0x10]) + descriptor[1:]
    payloads = [
        (descriptor if i == 0 else rest) + data[i * step : (i + 1) * step] for i in range(packets)
    ]
    return Frame(label, payloads, data, **kw)  # type: ignore[arg-type]


SPS = b"\x67\x42\x00\x1f\xe9\x02\x80"
PPS = b"\x68\xce\x38\x80"
IDR = b"\x65" + filler("idr", 40)
IDR2 = b"\x65" + filler("idr2", 30)
SLICE = b"\x41" + filler("slice", 20)


def stap_a(*nals: bytes) -> bytes:
    return b"\x18" + b"".join(struct.pack("!H", len(n)) + n for n in nals)


def fu_a(nal: bytes, parts: int) -> list[bytes]:
    """A NAL unit in ``parts`` FU-A fragments (RFC 6184 5.8)."""
    body = nal[1:]
    step = -(-len(body) // parts)
    out = []
    for i in range(parts):
        header = nal[0] & 0x1F | (0x80 if i == 0 else 0) | (0x40 if i == parts - 1 else 0)
        out.append(bytes([nal[0] & 0xE0 | 28, header]) + body[i * step : (i + 1) * step])
    return out


def h264(label: str, payloads: list[bytes], nals: list[bytes], **kw: object) -> Frame:
    return Frame(label, payloads, b"".join(START + n for n in nals), **kw)  # type: ignore[arg-type]


def audio(label: str, **kw: object) -> Frame:
    payload = b"\xfc" + filler(label, 20)
    return Frame(label, [payload], payload, **kw)  # type: ignore[arg-type]


@dataclass
class Lost:
    """The router's loss tracker gave these numbers up (``LossTracker.expire``)."""

    seqs: list[int]


@dataclass
class State:
    broken: bool
    dropped_frames: int


@dataclass
class Table:
    frames: list[Frame]
    rows: Sequence[tuple[int | Lost | State, str]]  # (what happens, labels of the frames out)
    seq0: int = 100
    ts0: int = 90000
    codec: str = "VP8"
    kind: str = "video"
    max_packets: int = 512
    packets: dict[int, tuple[int, bool, bytes, Frame]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seq, ts = self.seq0, self.ts0
        for frame in self.frames:
            seq = frame.seq if frame.seq is not None else seq
            frame.ts = ts = frame.ts if frame.ts is not None else ts
            for i, payload in enumerate(frame.payloads):
                last = i == len(frame.payloads) - 1
                self.packets[seq & 0xFFFF] = (ts, last and frame.marker, payload, frame)
                seq += 1
            ts = (ts + (960 if self.kind == "audio" else 3000)) & 0xFFFFFFFF


def signed32(x: int) -> int:
    return ((x + 0x80000000) & 0xFFFFFFFF) - 0x80000000


def run(table: Table) -> FrameAssembler:
    clock = 48000 if table.kind == "audio" else 90000
    assembler = FrameAssembler(table.codec, table.kind, clock, table.max_packets)
    frames = {f.label: f for f in table.frames}
    first_ts: int | None = None
    for i, (op, want) in enumerate(table.rows):
        if isinstance(op, State):
            got_state = State(assembler.broken, assembler.dropped_frames)
            assert got_state == op, f"row {i}: state {got_state}, want {op}"
            continue
        if isinstance(op, Lost):
            out = assembler.lost(op.seqs)
        else:
            ts, marker, payload, _ = table.packets[op]
            out = assembler.push(op, ts, marker, payload)
        labels = " ".join(next(f.label for f in table.frames if f.data == o.data) for o in out)
        assert labels == want, f"row {i}: {op}: got {labels!r}, want {want!r}"
        for o in out:
            frame = frames[next(f.label for f in table.frames if f.data == o.data)]
            assert frame.ts is not None
            if first_ts is None:
                first_ts = frame.ts
            assert o.timestamp == signed32(frame.ts - first_ts), f"row {i}: {frame.label}"
            assert o.keyframe is (not frame.label.startswith("P"))
            assert (o.kind, o.codec, o.capture) == (table.kind, table.codec, None)
    return assembler


TABLES: dict[str, Table] = {
    "in order": Table(
        [vp8("K0", 3), vp8("P1", 2), vp8("P2", 1)],
        [(100, ""), (101, ""), (102, "K0"), (103, ""), (104, "P1"), (105, "P2")],
    ),
    "reordered within a frame": Table(
        [vp8("K0", 3), vp8("P1", 3)],
        [(101, ""), (100, ""), (102, "K0"), (105, ""), (103, ""), (104, "P1")],
    ),
    "reordered across frames": Table(
        [vp8("K0", 2), vp8("P1", 2), vp8("P2", 2)],
        [(100, ""), (102, ""), (103, ""), (104, ""), (101, "K0 P1"), (105, "P2")],
    ),
    "duplicates are ignored": Table(
        [vp8("K0", 2), vp8("P1", 2)],
        [
            (100, ""),
            (100, ""),
            (101, "K0"),
            (101, ""),
            (100, ""),
            (102, ""),
            (102, ""),
            (103, "P1"),
            (103, ""),
            (State(False, 0), ""),
        ],
    ),
    "a late retransmission fills a hole": Table(
        [vp8("K0", 2), vp8("P1", 3), vp8("P2", 2)],
        [
            (100, ""),
            (101, "K0"),
            (102, ""),
            (104, ""),
            (105, ""),
            (106, ""),  # P2 is whole, but waits for P1
            (103, "P1 P2"),  # retransmitted (RTX) in time
            (State(False, 0), ""),
        ],
    ),
    "a loss given up: dropped, then broken until a keyframe": Table(
        [vp8("K0", 2), vp8("P1", 2), vp8("P2", 2), vp8("K3", 2), vp8("P4", 1)],
        [
            (100, ""),
            (101, "K0"),
            (102, ""),
            (104, ""),
            (105, ""),  # P2 is whole, but decodes only after P1
            (Lost([103]), ""),
            (State(True, 1), ""),  # P1 dropped; P2 held until a keyframe shows up
            (103, ""),  # too late now
            (106, ""),  # K3 starts: P2 goes too
            (State(True, 2), ""),
            (107, "K3"),
            (State(False, 2), ""),
            (108, "P4"),
        ],
    ),
    "a keyframe held behind a hole comes out when the hole is given up": Table(
        [vp8("K0", 2), vp8("P1", 2), vp8("K2", 2), vp8("P3", 1)],
        [
            (100, ""),
            (101, "K0"),
            (103, ""),
            (104, ""),
            (105, ""),
            (Lost([102]), "K2"),
            (106, "P3"),
            (State(False, 1), ""),
        ],
    ),
    "frames after a loss wait for a keyframe": Table(
        [vp8("K0", 1), vp8("P1", 2), vp8("P2", 1), vp8("P3", 1), vp8("K4", 1), vp8("P5", 1)],
        [
            (100, "K0"),
            (102, ""),
            (Lost([101]), ""),
            (103, ""),
            (104, ""),
            (105, "K4"),
            (106, "P5"),
            (State(False, 3), ""),
        ],
    ),
    "lost numbers that came, or were used, change nothing": Table(
        [vp8("K0", 2), vp8("P1", 2)],
        [
            (100, ""),
            (101, "K0"),
            (102, ""),
            (Lost([100, 101, 102, 103, 5000]), ""),  # 103: not missed yet (after the newest)
            (103, "P1"),
            (State(False, 0), ""),
        ],
    ),
    "two holes given up at once: the keyframe between them still comes out": Table(
        [vp8("K0", 1), vp8("P1", 2), vp8("K2", 2), vp8("P3", 2), vp8("K4", 1)],
        [
            (100, "K0"),
            (102, ""),
            (103, ""),
            (104, ""),
            (106, ""),
            (107, ""),
            (Lost([105, 101]), "K2 K4"),
            (State(False, 2), ""),
        ],
    ),
    "a frame's whole packets lost": Table(
        [vp8("K0", 1), vp8("P1", 2), vp8("P2", 1), vp8("K3", 1)],
        [(100, "K0"), (103, ""), (Lost([101, 102]), ""), (104, "K3"), (State(False, 1), "")],
    ),
    "a forward jump inside MAX_GAP is a loss, not a restart": Table(
        [vp8("K0", 1), vp8("P1", 1, seq=600), vp8("K2", 1)],
        [
            (100, "K0"),
            (600, ""),
            (Lost(list(range(101, 600))), ""),
            (State(True, 0), ""),  # P1 is held: a keyframe may yet follow it
            (601, "K2"),
            (State(False, 1), ""),
        ],
    ),
    "sequence numbers wrap mid-frame": Table(
        [vp8("K0", 3), vp8("P1", 2), vp8("P2", 2)],
        [(65534, ""), (65535, ""), (0, "K0"), (2, ""), (1, "P1"), (4, ""), (3, "P2")],
        seq0=65534,
    ),
    "a loss across the sequence wrap": Table(
        [vp8("K0", 2), vp8("P1", 2), vp8("K2", 2)],
        [(65534, ""), (65535, "K0"), (1, ""), (Lost([0]), ""), (2, ""), (3, "K2")],
        seq0=65534,
    ),
    "timestamps wrap": Table(
        [vp8("K0", 2), vp8("P1", 1), vp8("P2", 2)],
        [(100, ""), (101, "K0"), (102, "P1"), (104, ""), (103, "P2")],
        ts0=0xFFFFFFFF - 3500,
    ),
    "the publisher's numbering starts over (further back)": Table(
        [vp8("K0", 2, seq=40000), vp8("P1", 2), vp8("K2", 2, seq=10000), vp8("P3", 1)],
        [
            (40000, ""),
            (40001, "K0"),
            (40002, ""),  # P1 waits for 40003
            (10000, ""),  # 30002 back: a new numbering; P1 goes
            (State(True, 1), ""),
            (10001, "K2"),
            (10002, "P3"),
            (State(False, 1), ""),
        ],
    ),
    "the publisher's numbering starts over (ahead), with an inter frame": Table(
        [vp8("K0", 1), vp8("P1", 1, seq=100 + MAX_GAP + 1), vp8("K2", 1), vp8("P3", 1)],
        [
            (100, "K0"),
            (1101, ""),
            (State(True, 0), ""),
            (1102, "K2"),
            (1103, "P3"),
            (State(False, 1), ""),
        ],
    ),
    "joining mid-stream: from the first keyframe": Table(
        [vp8("P0", 2), vp8("P1", 1), vp8("K2", 2), vp8("P3", 1)],
        [
            (101, ""),
            (100, ""),
            (102, ""),
            (104, ""),
            (State(True, 0), ""),
            (103, "K2"),
            (State(False, 2), ""),
            (105, "P3"),
        ],
    ),
    "too many packets held: the oldest hole is given up": Table(
        [vp8("K0", 1), vp8("P1", 2), vp8("P2", 2), vp8("P3", 2), vp8("K4", 2), vp8("P5", 1)],
        [
            (100, "K0"),
            (102, ""),
            (103, ""),
            (104, ""),
            (105, ""),
            (106, ""),
            (107, ""),
            (108, "K4"),
            (109, "P5"),
            (State(False, 3), ""),
        ],
        max_packets=6,
    ),
    "no marker bits: a new timestamp ends a frame": Table(
        [vp8("K0", 2, marker=False), vp8("P1", 2, marker=False), vp8("P2", 1, marker=False)],
        [(100, ""), (101, ""), (102, "K0"), (104, ""), (103, "P1")],
    ),
    "a malformed payload: the frame is dropped": Table(
        [vp8("K0", 1), vp8("P1", 1, descriptor=b"\x00"), vp8("P2", 1), vp8("K3", 1)],
        [(100, "K0"), (101, ""), (102, ""), (103, "K3"), (State(False, 2), "")],
    ),
    "VP8 descriptors, each form": Table(
        [
            vp8("K0", 2, descriptor=b"\x90\x80\x05"),  # X, I: 7-bit picture id
            vp8("P1", 2, descriptor=b"\x90\x80\x81\x23"),  # 15-bit picture id
            vp8("P2", 2, descriptor=b"\x90\x40\x07"),  # L: TL0PICIDX
            vp8("P3", 2, descriptor=b"\x90\x20\x40"),  # T: TID
            vp8("P4", 2, descriptor=b"\x90\x10\x05"),  # K: KEYIDX
            vp8("P5", 2, descriptor=b"\x90\xf0\x81\x23\x07\x45"),  # all of them
            vp8("P6", 2, descriptor=b"\x30"),  # N (non-reference), no X
        ],
        # In order: each frame comes out with its second packet.
        [(100 + i, "") if i % 2 == 0 else (100 + i, f"{'KP'[i > 1]}{i // 2}") for i in range(14)],
    ),
    "H.264: STAP-A (SPS, PPS), FU-A IDR, single NAL units": Table(
        [
            h264("K0", [stap_a(SPS, PPS), *fu_a(IDR, 3)], [SPS, PPS, IDR]),
            h264("P1", [SLICE], [SLICE]),
            h264("P2", [b"\x06\x05\x01", *fu_a(SLICE, 2)], [b"\x06\x05\x01", SLICE]),  # SEI
        ],
        [
            (101, ""),
            (100, ""),
            (103, ""),
            (102, "K0"),
            (104, "P1"),
            (106, ""),
            (105, ""),
            (107, "P2"),
        ],
        codec="H264",
    ),
    "H.264: late SPS and PPS before the IDR's first fragment": Table(
        [h264("K0", [SPS, PPS, *fu_a(IDR, 2)], [SPS, PPS, IDR]), h264("P1", [SLICE], [SLICE])],
        [(102, ""), (101, ""), (100, ""), (103, "K0"), (104, "P1"), (State(False, 0), "")],
        codec="H264",
    ),
    "H.264: an FU-A start lost": Table(
        [
            h264("K0", [stap_a(SPS, PPS, IDR)], [SPS, PPS, IDR]),
            h264("P1", fu_a(SLICE, 3), [SLICE]),
            h264("K2", [SPS, PPS, IDR2], [SPS, PPS, IDR2]),
        ],
        [(100, "K0"), (102, ""), (103, ""), (Lost([101]), ""), (105, ""), (104, ""), (106, "K2")],
        codec="H264",
    ),
    "audio: late packets come out, duplicates do not": Table(
        [audio(f"A{i}") for i in range(6)],
        [
            (10, "A0"),
            (12, "A2"),
            (11, "A1"),  # late: the recorder's latency buffer places it
            (12, ""),
            (11, ""),
            (10, ""),
            (14, "A4"),
            (13, "A3"),
            (15, "A5"),
            (Lost([16]), ""),
            (State(False, 0), ""),
        ],
        seq0=10,
        codec="opus",
        kind="audio",
    ),
    "audio: too late to tell from a duplicate": Table(
        [audio(f"A{i}") for i in range(7)],
        [(10, "A0"), (12, "A2"), (13, "A3"), (14, "A4"), (15, "A5"), (11, "")],
        seq0=10,
        codec="opus",
        kind="audio",
        max_packets=4,
    ),
    "audio: a restarted numbering": Table(
        [audio("A0"), audio("A1"), audio("A2", seq=30000), audio("A3")],
        [(10, "A0"), (11, "A1"), (30000, "A2"), (30001, "A3"), (30000, "")],
        seq0=10,
        codec="opus",
        kind="audio",
    ),
}


@pytest.mark.parametrize("name", list(TABLES))
def test_tables(name: str) -> None:
    run(TABLES[name])


def test_nothing_held_after_a_stream() -> None:
    assembler = run(TABLES["a loss given up: dropped, then broken until a keyframe"])
    assert assembler.pending == 0
    assert assembler.frames == 3


def test_reset_waits_for_a_keyframe_and_keeps_the_timeline() -> None:
    table = Table([vp8("K0", 1), vp8("P1", 2), vp8("P2", 1), vp8("K3", 1)], [])
    assembler = FrameAssembler("VP8", "video", 90000)
    for seq in (100, 101):
        ts, marker, payload, _ = table.packets[seq]
        assembler.push(seq, ts, marker, payload)
    assembler.reset()
    assert (assembler.broken, assembler.pending, assembler.dropped_frames) == (True, 0, 1)
    out = [assembler.push(s, *table.packets[s][:3]) for s in (102, 103, 104)]
    assert [[f.timestamp for f in o] for o in out] == [[], [], [9000]]


def test_memory_stays_bounded_without_a_keyframe() -> None:
    assembler = FrameAssembler("VP8", "video", 90000, max_packets=64)
    for i in range(70000):  # inter frames only, and a hole never given up
        if i % 10 != 3:
            assembler.push(i & 0xFFFF, i // 2 * 3000, i % 2 == 1, b"\x10\x31\x02\x00")
        assert assembler.pending <= 64
    ts = 35000 * 3000
    out = assembler.push(70000 & 0xFFFF, ts, True, b"\x10" + vp8_bytes("K"))
    assert [f.keyframe for f in out] == [True]


def test_a_hole_never_given_up_is_dropped_when_in_step() -> None:
    """Without lost(): the max_packets bound gives up the hole, the stream goes on."""
    assembler = FrameAssembler("VP8", "video", 90000, max_packets=32)
    out: list[EncodedFrame] = []
    for i in range(400):
        if i == 50:
            continue
        key = i % 100 == 0
        payload = b"\x10" + vp8_bytes("K" if key else "P")
        out += assembler.push(i, i * 3000, True, payload)
    assert [f.timestamp // 3000 for f in out] == list(range(50)) + list(range(100, 400))
    assert assembler.pending == 0


@pytest.mark.parametrize("seed", range(6))
def test_with_the_routers_loss_tracker(seed: int) -> None:
    """Random loss, reordering, duplicates and retransmissions, with losses given up as the
    router does (LossTracker.expire every few packets): what comes out is the sent frames,
    in order, byte for byte; never an inter frame whose predecessor did not come out; every
    keyframe whose packets all came in time."""
    rng = random.Random(seed)
    frames = [vp8(f"{'K' if i % 15 == 0 else 'P'}{i}", rng.randint(1, 6)) for i in range(400)]
    table = Table(frames, [], seq0=rng.randrange(0x10000), ts0=rng.randrange(1 << 32))
    sent = list(table.packets)  # in sending order
    now = [0.0]
    tracker = LossTracker(clock=lambda: now[0])
    arrivals: list[tuple[float, int]] = []
    dropped: set[int] = set()
    for i, seq in enumerate(sent):
        at = i * 0.001 + rng.uniform(0, 0.005)  # up to five packets of reordering
        if rng.random() < 0.04:
            if rng.random() < 0.5:
                dropped.add(seq)
                continue
            at += 0.02  # retransmitted after a NACK, before the loss timeout
        arrivals.append((at, seq))
        if rng.random() < 0.05:
            arrivals.append((at + rng.uniform(0, 0.01), seq))  # a duplicate
    arrivals.sort()
    assembler = FrameAssembler("VP8", "video", 90000)
    out: list[EncodedFrame] = []
    for n, (at, seq) in enumerate(arrivals):
        now[0] = at
        tracker.add(seq)
        ts, marker, payload, _ = table.packets[seq]
        out += assembler.push(seq, ts, marker, payload)
        if n % 20 == 0:
            out += assembler.lost(tracker.expire(0.05))
    now[0] += 1
    out += assembler.lost(tracker.expire(0.05))
    index = {f.data: i for i, f in enumerate(frames)}
    got = [index[f.data] for f in out]
    assert got == sorted(set(got))
    assert all(frames[i].label[0] == "K" or i - 1 in got for i in got)
    first = table.seq0
    for i, frame in enumerate(frames):
        seqs = [(first + k) & 0xFFFF for k in range(len(frame.payloads))]
        first += len(frame.payloads)
        if frame.label[0] == "K" and not dropped.intersection(seqs):
            assert i in got, f"keyframe {i} whole but not out"
    assert len(got) > 200
    assert [f.timestamp for f in out] == [3000 * (i - got[0]) for i in got]


def test_unsupported_video_codec() -> None:
    with pytest.raises(ValueError):
        FrameAssembler("VP9", "video", 90000)


# ---------------------------------------------------------------- depayloaders


VP8_DESCRIPTORS = [
    b"\x10",
    b"\x30",
    b"\x90\x80\x05",
    b"\x90\x80\x81\x23",
    b"\x90\x40\x07",
    b"\x90\x20\x40",
    b"\x90\x10\x05",
    b"\x90\x30\x45",
    b"\x90\xf0\x81\x23\x07\x45",
    b"\x90\x00",  # X with no optional field
]


@pytest.mark.parametrize("descriptor", VP8_DESCRIPTORS)
def test_vp8_descriptor_forms_match_aiortc(descriptor: bytes) -> None:
    frame = vp8("K0", 3, descriptor=descriptor)
    assert vp8_depayload(frame.payloads) == frame.data
    assert vp8_depayload(frame.payloads) == b"".join(
        depayload(VP8_CODEC, p) for p in frame.payloads
    )


@pytest.mark.parametrize(
    "payloads",
    [
        [b""],
        [b"\x90"],  # X, no extension byte
        [b"\x90\x80"],  # I, no picture id
        [b"\x90\x80\x81"],  # a 15-bit picture id cut short
        [b"\x90\x70"],  # L and T/K, bytes missing
        [b"\x00abc"],  # the first packet does not start the frame
        [b"\x11abc"],  # partition 1 first
        [b"\x10abc", b""],
    ],
)
def test_vp8_malformed(payloads: list[bytes]) -> None:
    assert vp8_depayload(payloads) is None


def test_h264_forms_match_aiortc() -> None:
    payloads = [stap_a(SPS, PPS), *fu_a(IDR, 4), SLICE, *fu_a(SLICE, 2)]
    want = START + SPS + START + PPS + START + IDR + START + SLICE + START + SLICE
    assert h264_depayload(payloads) == want
    assert h264_depayload(payloads) == b"".join(depayload(H264_CODEC, p) for p in payloads)


@pytest.mark.parametrize(
    "payloads",
    [
        [b""],
        fu_a(IDR, 3)[1:],  # the start fragment missing
        fu_a(IDR, 3)[:2],  # the end fragment missing
        [fu_a(IDR, 2)[0], *fu_a(SLICE, 2)],  # a new FU-A inside one
        [fu_a(IDR, 2)[0], SLICE],  # a single NAL unit inside an FU-A
        [b"\x18\x00"],  # STAP-A, length cut short
        [b"\x18\x00\x09abc"],  # STAP-A, NAL unit cut short
        [b"\x18\x00\x00"],  # STAP-A, empty NAL unit
        [b"\x19\x00\x01\x00\x02ab"],  # STAP-B: interleaved mode only
        [b"\x00abc"],  # type 0
        [b"\x1c"],  # FU-A without its header
    ],
)
def test_h264_malformed(payloads: list[bytes]) -> None:
    assert h264_depayload(payloads) is None


# ---------------------------------------------------------------- capture time


def test_capture_time_across_a_timestamp_wrap() -> None:
    report = (3900000000.25, 0xFFFFFF00)
    assert capture_time(0x100, report, 90000) == pytest.approx(3900000000.25 + 512 / 90000)
    assert capture_time(0xFFFFF000, (10.0, 0x100), 90000) == pytest.approx(10.0 - 0x1100 / 90000)
    assert capture_time(0x100, None, 90000) is None


def test_push_fills_capture_as_the_receiver_tap_did() -> None:
    """The formula of ReceiverTap._frame: ntp + signed distance to the report / clock rate."""
    assembler = FrameAssembler("VP8", "video", 90000)
    report = (1000.0, 0xFFFFFFF0)
    raw = 0x20  # after the wrap
    (frame,) = assembler.push(7, raw, True, b"\x10" + vp8_bytes("K"), report)
    ticks = (raw - report[1] + (1 << 31)) % (1 << 32) - (1 << 31)
    assert frame.capture == pytest.approx(report[0] + ticks / 90000)
    (sound,) = FrameAssembler("opus", "audio", 48000).push(1, raw, False, b"\xfc", report)
    assert sound.capture == pytest.approx(report[0] + ticks / 48000)


# ---------------------------------------------------------------- real streams


def noise_frames(width: int, height: int, count: int, seed: int) -> list[av.VideoFrame]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    frames = []
    for i in range(count):
        img = np.roll(base, i * 3, axis=1)
        img[:: 7 + i % 3] = rng.integers(0, 255, img[:: 7 + i % 3].shape, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        frames.append(frame)
    return frames


def encode(codec: str, width: int, height: int, count: int, gop: int) -> list[av.Packet]:
    enc: Any = av.CodecContext.create(codec, "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.time_base = fractions.Fraction(1, 30)
    enc.bit_rate = 3_000_000
    enc.gop_size = gop
    if codec == "libvpx":
        enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    else:
        enc.options = {"tune": "zerolatency", "preset": "ultrafast", "bf": "0"}
    packets = []
    for frame in noise_frames(width, height, count, seed=len(codec)):
        packets += enc.encode(frame)
    packets += enc.encode(None)
    assert len(packets) == count
    return packets


def rtp_stream(
    frames: list[list[bytes]], seq0: int, ts0: int, step: int = 3000
) -> list[tuple[int, int, bool, bytes]]:
    out = []
    seq = seq0
    for i, payloads in enumerate(frames):
        for j, payload in enumerate(payloads):
            out.append(
                (seq & 0xFFFF, (ts0 + i * step) & 0xFFFFFFFF, j == len(payloads) - 1, payload)
            )
            seq += 1
    return out


def shuffle(packets: list[tuple[int, int, bool, bytes]], window: int, seed: int) -> list:
    """Each packet moved up to ``window`` places, and one in ten sent twice."""
    rng = random.Random(seed)
    order = sorted(range(len(packets)), key=lambda i: i + rng.uniform(0, window))
    out = []
    for i in order:
        out.append(packets[i])
        if rng.random() < 0.1:
            out.insert(max(0, len(out) - rng.randrange(1, window + 1)), packets[i])
    return out


@pytest.fixture(scope="module")
def vp8_packets() -> list[av.Packet]:
    return encode("libvpx", 320, 240, 24, gop=10)


@pytest.fixture(scope="module")
def h264_packets() -> list[av.Packet]:
    return encode("libx264", 320, 240, 12, gop=6)


@pytest.mark.parametrize("window", [1, 4, 12])
def test_vp8_through_aiortc_packetizer(vp8_packets: list[av.Packet], window: int) -> None:
    data = [bytes(p) for p in vp8_packets]
    payloads = [Vp8Encoder._packetize(d, 1000 + i) for i, d in enumerate(data)]
    assert max(len(p) for p in payloads) >= 4  # frames of several packets
    packets = rtp_stream(payloads, seq0=65500, ts0=0xFFFFFFFF - 20000)
    assembler = FrameAssembler("VP8", "video", 90000)
    out: list[EncodedFrame] = []
    for seq, ts, marker, payload in shuffle(packets, window, seed=window):
        out += assembler.push(seq, ts, marker, payload)
    assert [f.data for f in out] == data
    assert [f.data for f in out] == [
        b"".join(depayload(VP8_CODEC, p) for p in frame) for frame in payloads
    ]
    assert [f.timestamp for f in out] == [3000 * i for i in range(len(data))]
    assert [f.keyframe for f in out] == [p.is_keyframe for p in vp8_packets]
    assert (assembler.pending, assembler.dropped_frames) == (0, 0)


def test_h264_through_aiortc_packetizer(h264_packets: list[av.Packet]) -> None:
    data = [bytes(p) for p in h264_packets]
    payloads = [H264Encoder._packetize(H264Encoder._split_bitstream(d)) for d in data]
    kinds = {p[0] & 0x1F for frame in payloads for p in frame}
    assert {24, 28} <= kinds  # STAP-A and FU-A both exercised
    packets = rtp_stream(payloads, seq0=65530, ts0=0xFFFFFFFF - 7000)
    assembler = FrameAssembler("H264", "video", 90000)
    out: list[EncodedFrame] = []
    for seq, ts, marker, payload in shuffle(packets, 6, seed=1):
        out += assembler.push(seq, ts, marker, payload)
    assert len(out) == len(data)
    for got, want in zip(out, data, strict=True):  # start codes may differ in length
        assert list(H264Encoder._split_bitstream(got.data)) == list(
            H264Encoder._split_bitstream(want)
        )
    assert [f.data for f in out] == [
        b"".join(depayload(H264_CODEC, p) for p in frame) for frame in payloads
    ]
    assert [f.keyframe for f in out] == [p.is_keyframe for p in h264_packets]
    decoder = av.CodecContext.create("h264", "r")
    pictures = sum(len(decoder.decode(f.to_packet())) for f in out) + len(decoder.decode(None))
    assert pictures == len(data)


def test_vp8_assembled_frames_decode() -> None:
    packets = encode("libvpx", 64, 48, 10, gop=100)
    payloads = [Vp8Encoder._packetize(bytes(p), i) for i, p in enumerate(packets)]
    assembler = FrameAssembler("VP8", "video", 90000)
    out: list[EncodedFrame] = []
    for seq, ts, marker, payload in shuffle(rtp_stream(payloads, 40000, 123), 3, seed=7):
        out += assembler.push(seq, ts, marker, payload)
    decoder = av.CodecContext.create("vp8", "r")
    pictures = [pic for f in out for pic in decoder.decode(f.to_packet())]
    assert len(out) == len(pictures) == 10
    assert (pictures[0].width, pictures[0].height) == (64, 48)


def test_vp8_after_a_loss_resumes_at_a_keyframe_and_decodes(vp8_packets: list[av.Packet]) -> None:
    data = [bytes(p) for p in vp8_packets]
    payloads = [Vp8Encoder._packetize(d, i) for i, d in enumerate(data)]
    packets = rtp_stream(payloads, seq0=1000, ts0=0)
    frame_of = [i for i, frame in enumerate(payloads) for _ in frame]
    victim = next(j for j, i in enumerate(frame_of) if i == 3)  # in frame 3
    assembler = FrameAssembler("VP8", "video", 90000)
    out: list[EncodedFrame] = []
    for j, (seq, ts, marker, payload) in enumerate(packets):
        if j == victim:
            continue
        out += assembler.push(seq, ts, marker, payload)
        if j == victim + 5:
            out += assembler.lost([packets[victim][0]])
    keys = [i for i, p in enumerate(vp8_packets) if p.is_keyframe]
    resume = next(k for k in keys if k > 3)
    assert [f.timestamp // 3000 for f in out] == [0, 1, 2, *range(resume, len(data))]
    decoder = av.CodecContext.create("vp8", "r")
    assert sum(len(decoder.decode(f.to_packet())) for f in out) == len(out)
