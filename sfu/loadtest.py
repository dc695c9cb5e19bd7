"""Synthetic SFU participants: real aiortc peers speaking the sfu-* protocol (docs/sfu.md).

Used by the media tests, the forwarding benchmark and load tests. The publisher's video
draws its frame number in pixels (16 black or white blocks), so a subscriber can check
that what it decodes is the right picture, complete and in order.

A peer talks to anything with the :class:`Router` interface (``join`` and ``handle``): a
router in the same process, or a proxy to one elsewhere.
"""

from __future__ import annotations

import asyncio
import fractions
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

WIDTH, HEIGHT = 320, 240
BITS = 16
COLS, ROWS = 8, 2
FPS = 30
VIDEO_CLOCK = 90000


class RouterLike(Protocol):
    """What a peer needs of the SFU: :class:`sfu.media.router.Router`'s client interface."""

    async def join(self, user_id: str, send: Callable[[str, dict], Awaitable[None]]) -> None: ...

    async def handle(self, user_id: str, event: str, payload: dict) -> dict: ...


def draw_number(number: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A grey image with ``number`` as 16 big black (0) or white (1) blocks."""
    image = np.full((height, width), 128, dtype=np.uint8)
    bw, bh = width // COLS, height // ROWS
    for bit in range(BITS):
        row, col = divmod(bit, COLS)
        value = 255 if number >> bit & 1 else 0
        image[row * bh : (row + 1) * bh, col * bw : (col + 1) * bw] = value
    return image


def read_number(gray: np.ndarray) -> tuple[int, bool]:
    """The number drawn by :func:`draw_number`, and whether every block decoded cleanly."""
    h, w = gray.shape
    bw, bh = w // COLS, h // ROWS
    number, clean = 0, True
    for bit in range(BITS):
        row, col = divmod(bit, COLS)
        block = gray[
            row * bh + bh // 4 : (row + 1) * bh - bh // 4,
            col * bw + bw // 4 : (col + 1) * bw - bw // 4,
        ]
        mean = float(block.mean())
        if mean > 128:
            number |= 1 << bit
        clean = clean and (mean < 40 or mean > 215)
    return number, clean


class NumberedVideoTrack(MediaStreamTrack):
    """Video whose frame ``n`` shows the number ``n`` (30 fps, real time)."""

    kind = "video"

    def __init__(self, noise: int = 0, width: int = WIDTH, height: int = HEIGHT) -> None:
        super().__init__()
        self.number = 0
        self.width, self.height = width, height
        # Random colour (chroma) in every frame: hard to compress, so a high bitrate; the
        # number, drawn in luma, stays readable.
        self.noise = min(noise, 128)
        self._random = np.random.default_rng(1)
        self._start: float | None = None

    async def recv(self) -> VideoFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        wait = self._start + self.number / FPS - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        gray = draw_number(self.number, self.width, self.height)
        shape = (self.height // 2, self.width)
        if self.noise:
            chroma = self._random.integers(128 - self.noise, 128 + self.noise, shape, np.uint8)
        else:
            chroma = np.full(shape, 128, dtype=np.uint8)
        yuv = np.concatenate([gray, chroma], axis=0)
        frame = VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = self.number * (VIDEO_CLOCK // FPS)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.number += 1
        return frame


class ToneTrack(MediaStreamTrack):
    """A 440 Hz tone at ``dbov`` (20 ms frames, real time): the sender tags its level."""

    kind = "audio"

    def __init__(self, dbov: float = -20.0) -> None:
        super().__init__()
        self.amplitude = 32767 * 10 ** (dbov / 20) * math.sqrt(2)
        self.samples = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        wait = self._start + self.samples / 48000 - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        t = (self.samples + np.arange(960)) / 48000
        data = (self.amplitude * np.sin(2 * math.pi * 440 * t)).astype(np.int16)
        frame = AudioFrame.from_ndarray(data.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self.samples
        frame.time_base = fractions.Fraction(1, 48000)
        self.samples += 960
        return frame


@dataclass
class Received:
    """What a subscriber decoded from one forwarded track."""

    user_id: str
    source: str
    kind: str
    numbers: list[int] = field(default_factory=list)
    unclean: int = 0
    frames: int = 0
    first_at: float | None = None


class SfuPeer:
    """One participant: publishes through ``sfu-publish``, answers ``sfu-subscribe-offer``."""

    def __init__(self, router: RouterLike, user_id: str) -> None:
        self.router = router
        self.user_id = user_id
        self.events: list[tuple[str, dict]] = []
        self.publish_pc: RTCPeerConnection | None = None
        self.subscribe_pc: RTCPeerConnection | None = None
        self.session = 0
        self.tracks: dict[str, dict[str, Any]] = {}  # mid -> the offer's track entry
        self.received: dict[str, Received] = {}  # trackId -> what arrived
        self.answer_errors: list[dict] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._offers: asyncio.Queue[dict] = asyncio.Queue()
        self._offer_task: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()

    async def join(self) -> SfuPeer:
        await self.router.join(self.user_id, self._send)
        self._offer_task = asyncio.ensure_future(self._answer_offers())
        return self

    async def _send(self, event: str, payload: dict) -> None:
        self.events.append((event, payload))
        if event == "sfu-subscribe-offer":
            self._offers.put_nowait(payload)
        self.changed.set()

    async def publish(self, sources: dict[str, MediaStreamTrack]) -> dict:
        """Offers these tracks (source -> track); returns the acknowledgement."""
        if self.publish_pc is None:
            self.publish_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc = self.publish_pc
        for track in sources.values():
            pc.addTransceiver(track, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        ack = await self.router.handle(
            self.user_id,
            "sfu-publish",
            {
                "description": {"type": "offer", "sdp": pc.localDescription.sdp},
                "sources": {t.id: source for source, t in sources.items()},
            },
        )
        if ack["ok"]:
            await pc.setRemoteDescription(RTCSessionDescription(**ack["description"]))
        return ack

    def publish_sender(self, kind: str) -> Any:
        assert self.publish_pc is not None
        return next(s for s in self.publish_pc.getSenders() if s.kind == kind)

    async def _answer_offers(self) -> None:
        while True:
            offer = await self._offers.get()
            if offer["session"] != self.session or self.subscribe_pc is None:
                if self.subscribe_pc is not None:
                    await self.subscribe_pc.close()
                self.session = offer["session"]
                self.subscribe_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
                self.subscribe_pc.on("track", self._on_track)
            pc = self.subscribe_pc
            for entry in offer["tracks"]:
                self.tracks[entry["mid"]] = entry
            await pc.setRemoteDescription(RTCSessionDescription(**offer["description"]))
            await pc.setLocalDescription(await pc.createAnswer())
            ack = await self.router.handle(
                self.user_id,
                "sfu-subscribe-answer",
                {
                    "session": self.session,
                    "description": {"type": "answer", "sdp": pc.localDescription.sdp},
                },
            )
            if not ack["ok"]:
                self.answer_errors.append(ack)

    def _on_track(self, track: MediaStreamTrack) -> None:
        assert self.subscribe_pc is not None
        transceiver = next(
            t for t in self.subscribe_pc.getTransceivers() if t.receiver.track is track
        )
        entry = self.tracks[transceiver.mid]
        received = Received(entry["userId"], entry["source"], entry["kind"])
        self.received[entry["trackId"]] = received
        task = asyncio.ensure_future(self._read(track, received))
        self._tasks.add(task)

    async def _read(self, track: MediaStreamTrack, received: Received) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                frame = await track.recv()
                received.frames += 1
                if received.first_at is None:
                    received.first_at = loop.time()
                if isinstance(frame, VideoFrame):
                    number, clean = read_number(frame.to_ndarray(format="gray"))
                    received.numbers.append(number)
                    received.unclean += not clean
                self.changed.set()
        except MediaStreamError:
            pass

    def video_from(self, user_id: str, source: str = "camera") -> Received | None:
        for received in self.received.values():
            if received.user_id == user_id and received.source == source:
                return received
        return None

    async def wait_video(
        self, user_id: str, frames: int, timeout: float = 30, source: str = "camera"
    ) -> Received:
        """Waits until ``frames`` frames of that participant's video were decoded."""

        async def wait() -> Received:
            while True:
                received = self.video_from(user_id, source)
                if received is not None and len(received.numbers) >= frames:
                    return received
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(wait(), timeout)

    async def close(self) -> None:
        if self._offer_task is not None:
            self._offer_task.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for pc in (self.publish_pc, self.subscribe_pc):
            if pc is not None:
                await pc.close()
        if self._offer_task is not None:
            await asyncio.gather(self._offer_task, return_exceptions=True)
