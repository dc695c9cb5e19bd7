"""Synthetic publishers for recorder tests: PyAV-encoded VP8 and Opus with RTP-like pts."""

from __future__ import annotations

import fractions
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

VIDEO_TB = fractions.Fraction(1, 90000)
AUDIO_TB = fractions.Fraction(1, 48000)

RED = (230, 30, 30)
GREEN = (30, 200, 40)
BLUE = (40, 60, 230)
YELLOW = (240, 220, 20)


@dataclass
class Feed:
    """One encoded frame to deliver at ``at`` seconds after the recording starts."""

    at: float
    user_id: str
    source: str
    kind: str
    packet: av.Packet
    keyframe: bool
    capture: float | None = None  # the sender's capture time (as from RTCP sender reports)


def h264_frames(
    colour: Callable[[float], tuple[int, int, int]],
    start: float,
    duration: float,
    fps: int = 15,
    size: tuple[int, int] = (320, 240),
    ts0: int = 99_000,
) -> list[tuple[float, av.Packet, bool]]:
    """Solid-colour H.264 (Annex B, as WebRTC forwards it), no B-frames."""
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = size[0], size[1], "yuv420p"
    enc.time_base = VIDEO_TB
    enc.framerate = fps
    enc.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(fps * 2)}
    out: list[tuple[float, av.Packet, bool]] = []
    img = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    for i in range(round(duration * fps)):
        t = i / fps
        img[:] = colour(t)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = round(t * 90000)
        frame.time_base = VIDEO_TB
        for p in enc.encode(frame):
            out.append((start + p.pts / 90000, _rtp(p, ts0 + p.pts, VIDEO_TB), p.is_keyframe))
    return out


def vp8_frames(
    colour: Callable[[float], tuple[int, int, int]],
    start: float,
    duration: float,
    fps: int = 15,
    size: tuple[int, int] = (320, 240),
    ts0: int = 1_234_567,
) -> list[tuple[float, av.Packet, bool]]:
    """Solid-colour VP8 frames; ``colour(t)`` gives the colour at second ``t`` of the track."""
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = size[0], size[1], "yuv420p"
    enc.time_base = VIDEO_TB
    enc.framerate = fps
    enc.bit_rate = 300_000
    enc.gop_size = fps * 2
    enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    out: list[tuple[float, av.Packet, bool]] = []
    img = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    n = round(duration * fps)
    for i in range(n):
        t = i / fps
        img[:] = colour(t)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = round(t * 90000)
        frame.time_base = VIDEO_TB
        for p in enc.encode(frame):
            out.append((start + p.pts / 90000, _rtp(p, ts0 + p.pts, VIDEO_TB), p.is_keyframe))
    return out


def opus_frames(
    signal: Callable[[np.ndarray], np.ndarray],
    start: float,
    duration: float,
    ts0: int = 7_654_321,
) -> list[tuple[float, av.Packet, bool]]:
    """20 ms Opus packets of ``signal(t)`` (t: seconds of the track, float array)."""
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format = 48000, "mono", "s16"
    enc.time_base = AUDIO_TB
    enc.bit_rate = 64000
    out: list[tuple[float, av.Packet, bool]] = []
    n = 960
    for i in range(round(duration * 50)):
        t = (np.arange(n) + i * n) / 48000
        pcm = np.clip(signal(t) * 32767, -32768, 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = i * n
        frame.time_base = AUDIO_TB
        for p in enc.encode(frame):
            # The encoder reports pre-skip as a negative first pts; count packets instead.
            k = len(out)
            out.append((start + k * 0.02, _rtp(p, ts0 + k * n, AUDIO_TB), True))
    return out


def _rtp(p: av.Packet, pts: int, tb: fractions.Fraction) -> av.Packet:
    packet = av.Packet(bytes(p))
    packet.pts = pts % 2**32
    packet.time_base = tb
    return packet


def tone(freq: float, amp: float = 0.4) -> Callable[[np.ndarray], np.ndarray]:
    return lambda t: amp * np.sin(2 * np.pi * freq * t)


def feeds(
    user: str, items: Iterable[tuple[float, av.Packet, bool]], kind: str, source: str | None = None
) -> list[Feed]:
    src = source or ("camera" if kind == "video" else "mic")
    return [Feed(at, user, src, kind, p, k) for at, p, k in items]


def drive(
    recorder,
    clock,
    script: list[tuple[float, Callable[[], None]]],
    end: float,
    participants: Iterable[tuple[str, str]] = (),
) -> None:
    """Run ``script`` (time, action) on a manual clock as fast as possible, then stop at ``end``.

    Each action is called with the clock set to its time, as a live router would call it.
    ``participants`` are passed to ``Recorder.start`` (in the room from the start).
    """
    recorder.start(participants)
    t0 = clock()
    for at, action in sorted(script, key=lambda item: item[0]):
        clock.set(t0 + at)
        action()
    clock.set(t0 + end)
    recorder.stop()


def packet_actions(recorder, items: list[Feed]) -> list[tuple[float, Callable[[], None]]]:
    def call(f: Feed) -> Callable[[], None]:
        return lambda: recorder.on_packet(
            f.user_id, f.source, f.kind, f.packet, f.keyframe, capture=f.capture
        )

    return [(f.at, call(f)) for f in items]


@dataclass
class Decoded:
    width: int
    height: int
    times: np.ndarray  # video frame times, seconds
    samples: list[np.ndarray]  # per frame: the probed pixels (rgb) at the probe points
    audio: np.ndarray  # mono float
    audio_start: float
    duration: float
    video_codec: str
    audio_codec: str


def decode(path: Path, probes: list[tuple[int, int]], region: int = 4) -> Decoded:
    """Decode a recording: frame times, mean RGB around each probe point, the audio."""
    times: list[float] = []
    samples: list[np.ndarray] = []
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        width, height = vs.codec_context.width, vs.codec_context.height
        vcodec, acodec = vs.codec_context.name, c.streams.audio[0].codec_context.name
        for frame in c.decode(video=0):
            times.append(float(frame.time))
            rgb = frame.to_ndarray(format="rgb24")
            samples.append(
                np.array(
                    [
                        rgb[y - region : y + region, x - region : x + region].reshape(-1, 3).mean(0)
                        for x, y in probes
                    ]
                )
            )
    chunks = []
    start = None
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            if start is None:
                start = float(frame.time)
            pcm = frame.to_ndarray()  # planar: one row per channel; packed: interleaved
            channels = frame.layout.nb_channels
            chunks.append(pcm[0] if frame.format.is_planar else pcm.reshape(-1)[::channels])
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    duration = max(times[-1] + (times[1] - times[0]) if len(times) > 1 else 0, len(audio) / 48000)
    return Decoded(
        width, height, np.array(times), samples, audio, start or 0.0, duration, vcodec, acodec
    )


def level_at(audio: np.ndarray, freq: float, start: float, end: float, rate: int = 48000) -> float:
    """Amplitude of ``freq`` in [start, end) seconds (a sine of amplitude a reads about a)."""
    seg = audio[int(start * rate) : int(end * rate)]
    t = np.arange(len(seg)) / rate
    c = np.abs(np.sum(seg * np.exp(-2j * np.pi * freq * t)))
    return float(2 * c / max(len(seg), 1))
