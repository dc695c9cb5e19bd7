"""Pre-encoded media for load generation (``sfu loadtest --replay``, #20).

A decoding load generator spends its CPU on libvpx: encoding every publisher's frames and
decoding every subscriber's. Here each kind of media is encoded once, at start-up
(:class:`VideoClip`: ``FRAMES`` pictures showing their own number, a keyframe every second;
:class:`AudioClip`: one second of Opus tone) and publishers loop it as pre-encoded packets
(aiortc's sender packetizes an ``av.Packet`` without encoding). Subscribers never decode:
:class:`FrameChecker` gets the forwarded RTP packets through the server's own receive path
(:class:`~sfu.media.aiortc.receiver.ReceiverTap`, its direct SRTP path), reassembles each
VP8 frame (descriptor stripped) and knows it by its CRC-32 among the clip's frames: which
picture it is, hence its number, and whether it came complete and undamaged. The numbers
land in the same :class:`~sfu.loadtest.Received` records a decoding subscriber fills, so
the load test's counts, order checks and latencies mean the same in both modes.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.rtp import RtpPacket

from .media.rtp.seqmap import seq_after
from .media.rtp.vp8 import parse as parse_vp8

FPS = 30
VIDEO_CLOCK = 90000
FRAMES = 300  # 10 s: a frame is known by its place in the loop while it is in flight
AUDIO_PACKETS = 50  # 1 s of 20 ms Opus packets


@dataclass(frozen=True)
class VideoClip:
    """``FRAMES`` VP8 frames, frame ``i`` showing the number ``i``, encoded once."""

    width: int
    height: int
    frames: list[bytes]
    keyframes: list[bool]
    by_crc: dict[int, int] = field(repr=False)  # CRC-32 of a frame -> its index

    @classmethod
    def encode(
        cls, width: int, height: int, noise: int = 0, bitrate: int = 700_000, frames: int = FRAMES
    ) -> VideoClip:
        # Imported here: loadtest imports replay, and replay draws loadtest's pictures.
        from .loadtest import draw_number

        codec = av.CodecContext.create("libvpx", "w")
        codec.width, codec.height = width, height
        codec.pix_fmt = "yuv420p"
        codec.bit_rate = bitrate
        codec.time_base = fractions.Fraction(1, FPS)
        codec.gop_size = FPS  # a keyframe every second: a new subscriber waits at most that
        codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        rng = np.random.default_rng(1)
        shape = (height // 2, width)
        out: list[bytes] = []
        keys: list[bool] = []
        pending: list[av.Packet] = []
        for i in range(frames):
            gray = draw_number(i, width, height)
            chroma = (
                rng.integers(128 - noise, 128 + noise, shape, np.uint8)
                if noise
                else np.full(shape, 128, dtype=np.uint8)
            )
            frame = av.VideoFrame.from_ndarray(np.concatenate([gray, chroma]), format="yuv420p")
            frame.pts = i
            if i % FPS == 0:  # the loop starts over at frame 0: a keyframe, as every FPS-th
                frame.pict_type = av.video.frame.PictureType.I
            pending += codec.encode(frame)
        pending += codec.encode(None)
        for packet in pending:
            out.append(bytes(packet))
            keys.append(bool(packet.is_keyframe))
        by_crc = {zlib.crc32(f): i for i, f in enumerate(out)}
        if len(by_crc) != len(out):
            raise ValueError("two frames of the clip have the same CRC-32")
        return cls(width, height, out, keys, by_crc)


@dataclass(frozen=True)
class AudioClip:
    """One second of a 440 Hz tone as Opus packets, encoded once."""

    packets: list[bytes]

    @classmethod
    def encode(cls, dbov: float = -20.0) -> AudioClip:
        codec = av.CodecContext.create("libopus", "w")
        codec.sample_rate = 48000
        codec.layout = "stereo"
        codec.format = "s16"
        codec.bit_rate = 32000
        codec.time_base = fractions.Fraction(1, 48000)
        amplitude = 32767 * 10 ** (dbov / 20) * math.sqrt(2)
        out: list[bytes] = []
        for i in range(AUDIO_PACKETS):
            t = (i * 960 + np.arange(960)) / 48000
            mono = (amplitude * np.sin(2 * math.pi * 440 * t)).astype(np.int16)
            data = np.repeat(mono, 2).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(data, format="s16", layout="stereo")
            frame.sample_rate = 48000
            frame.pts = i * 960
            out += [bytes(p) for p in codec.encode(frame)]
        return cls(out)


class ReplayVideoTrack(MediaStreamTrack):
    """Loops a :class:`VideoClip` in real time at ``FPS``: frame ``n`` is the clip's frame
    ``n % FRAMES``. ``number`` and ``made_at`` as in :class:`~sfu.loadtest.NumberedVideoTrack`.

    A keyframe request cannot be honoured early (nothing is encoded): the next keyframe
    comes within a second, at the clip's next one.
    """

    kind = "video"

    def __init__(self, clip: VideoClip) -> None:
        super().__init__()
        self.clip = clip
        self.number = 0  # of the next frame
        self.made_at: list[float] = []
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        wait = self._start + self.number / FPS - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        packet = av.Packet(self.clip.frames[self.number % len(self.clip.frames)])
        packet.pts = self.number * (VIDEO_CLOCK // FPS)
        packet.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.made_at.append(loop.time())
        self.number += 1
        return packet


class ReplayAudioTrack(MediaStreamTrack):
    """Loops an :class:`AudioClip` in real time (20 ms packets)."""

    kind = "audio"

    def __init__(self, clip: AudioClip) -> None:
        super().__init__()
        self.clip = clip
        self.count = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        wait = self._start + self.count * 0.02 - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        packet = av.Packet(self.clip.packets[self.count % len(self.clip.packets)])
        packet.pts = self.count * 960
        packet.time_base = fractions.Fraction(1, 48000)
        self.count += 1
        return packet


class FrameChecker:
    """Knows each forwarded VP8 frame of one track without decoding it.

    ``on_packet`` takes the track's RTP packets as they arrive (a ReceiverTap's callback).
    A frame is the packets of one timestamp, from the one that starts partition 0 to the
    one with the marker bit, with no sequence number missing; its payload (descriptors
    stripped) is looked up by CRC-32 in the clip. ``on_frame(number, clean)`` follows for
    every frame whose end arrived: ``clean`` is False for a frame with packets missing or
    bytes that are none of the clip's (then ``number`` is None), and for every frame after
    a loss until the next keyframe (a decoder would show them damaged). Packets that come
    late (a retransmission after the frame moved on) are ignored: a loss repaired late
    still counts, where a decoding subscriber's jitter buffer may have waited for it.
    ``latest()`` gives the publisher's newest frame number, to place the clip's frame ``i``
    in the loop.
    """

    def __init__(
        self,
        clip: VideoClip,
        latest: Callable[[], int],
        on_frame: Callable[[int | None, bool], None],
    ) -> None:
        self.clip = clip
        self._latest = latest
        self._on_frame = on_frame
        self._parts: list[bytes] = []
        self._timestamp: int | None = None
        self._next_seq: int | None = None
        self._whole = False
        self._broken = False  # a loss since the last keyframe: a decoder shows damage
        self.frames = 0
        self.damaged = 0

    def on_packet(self, packet: RtpPacket, starts_keyframe: bool) -> None:
        d = parse_vp8(packet.payload)
        seq = packet.sequence_number
        if d is None:
            self._whole = False
            return
        if self._next_seq is not None and seq != self._next_seq and seq_after(self._next_seq, seq):
            return  # a late duplicate or retransmission of what came already
        if d.starts_picture or packet.timestamp != self._timestamp:
            if self._timestamp is not None and self._parts and packet.timestamp != self._timestamp:
                self._end(False)  # the previous frame never got its marker
            self._timestamp = packet.timestamp
            self._parts = []
            if self._next_seq is not None and seq != self._next_seq:
                self._broken = True  # a frame, or the end of one, was lost
            if starts_keyframe:
                self._broken = False  # a keyframe refers to nothing before it
            self._whole = d.starts_picture
        elif self._next_seq is not None and seq != self._next_seq:
            self._whole = False  # a packet of this frame is missing
        self._next_seq = (seq + 1) & 0xFFFF
        self._parts.append(packet.payload[d.size :])
        if packet.marker:
            self._end(self._whole)

    def _end(self, whole: bool) -> None:
        index = self.clip.by_crc.get(zlib.crc32(b"".join(self._parts))) if whole else None
        self._parts = []
        self._timestamp = None
        self.frames += 1
        if index is None:
            self.damaged += 1
            self._broken = True
            self._on_frame(None, False)
            return
        newest = self._latest()
        n = len(self.clip.frames)
        # The latest frame number the publisher made that shows clip frame `index`.
        number = newest - ((newest - index) % n)
        self.damaged += self._broken
        self._on_frame(number, not self._broken)
