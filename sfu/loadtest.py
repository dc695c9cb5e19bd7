"""Synthetic SFU participants: real aiortc peers speaking the sfu-* protocol (docs/sfu.md).

Used by the media tests, the forwarding benchmark and ``sfu loadtest`` (:func:`run_loadtest`,
over Socket.IO to a running server). The publisher's video draws its frame number in pixels
(16 black or white blocks), so a subscriber can check that what it decodes is the right
picture, complete and in order.

A peer talks to anything with the :class:`Router` interface (``join`` and ``handle``): a
router in the same process, or a proxy to one elsewhere.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import os
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
from aiortc.rtp import RtpPacket
from av import AudioFrame, VideoFrame

from .media.aiortc.receiver import ReceiverTap
from .media.aiortc.transport import receive_directly
from .replay import AudioClip, FrameChecker, ReplayAudioTrack, ReplayVideoTrack, VideoClip

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
    """Video whose frame ``n`` shows the number ``first + n`` (30 fps, real time); a
    ``first`` of its own per publisher tells a subscriber whose picture it decoded."""

    kind = "video"

    def __init__(
        self, noise: int = 0, width: int = WIDTH, height: int = HEIGHT, first: int = 0
    ) -> None:
        super().__init__()
        self.first = first
        self.number = first  # of the next frame
        self.width, self.height = width, height
        # Random colour (chroma) in every frame: hard to compress, so a high bitrate; the
        # number, drawn in luma, stays readable.
        self.noise = min(noise, 128)
        self._random = np.random.default_rng(1)
        self._start: float | None = None
        self.made_at: list[float] = []  # event-loop time each frame was made, by number - first

    async def recv(self) -> VideoFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        wait = self._start + (self.number - self.first) / FPS - loop.time()
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
        frame.pts = (self.number - self.first) * (VIDEO_CLOCK // FPS)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.made_at.append(loop.time())
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
    times: list[float] = field(default_factory=list)  # event-loop time each number decoded
    unclean: int = 0
    clean_run: int = 0  # clean pictures since the last damaged one
    frames: int = 0
    first_at: float | None = None


@dataclass
class Replay:
    """What replaying peers share: the clip, each publisher's track (by user id) to place a
    received frame in its loop, and the subscribers' receiver taps (kept alive here)."""

    clip: VideoClip
    tracks: dict[str, ReplayVideoTrack] = field(default_factory=dict)
    taps: list[ReceiverTap] = field(default_factory=list)


# The least timestamp jump where the server puts a new track on a reused m-line: its
# continued timestamps jump by the pause plus 1 s (sfu.media.aiortc.sender.reuse_sender).
REUSE_JUMP = 1.0


class SfuPeer:
    """One participant: publishes through ``sfu-publish``, answers ``sfu-subscribe-offer``."""

    def __init__(
        self,
        router: RouterLike,
        user_id: str,
        configuration: RTCConfiguration | None = None,
        replay: Replay | None = None,
    ) -> None:
        self.router = router
        self.user_id = user_id
        # Set: received media is checked packet by packet, never decoded (sfu.replay).
        self.replay = replay
        # Always explicit: aiortc's default (None) would ask a public Google STUN server;
        # max-bundle like the server and browsers (one transport per connection).
        self.configuration = configuration or peer_configuration()
        self.events: list[tuple[str, dict]] = []
        self.publish_pc: RTCPeerConnection | None = None
        self.subscribe_pc: RTCPeerConnection | None = None
        self.session = 0
        self.tracks: dict[str, dict[str, Any]] = {}  # mid -> the offer's track entry
        self._reassigned: dict[str, float] = {}  # mid -> loop time it last changed hands
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
            self.publish_pc = RTCPeerConnection(self.configuration)
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
                self.subscribe_pc = RTCPeerConnection(self.configuration)
                self.subscribe_pc.on("track", self._on_track)
            pc = self.subscribe_pc
            self._take_tracks(offer["tracks"])
            await pc.setRemoteDescription(RTCSessionDescription(**offer["description"]))
            await pc.setLocalDescription(await pc.createAnswer())
            if self.replay is not None:
                receive_directly(pc)  # the server's own receive path: no aiortc layers
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

    def _take_tracks(self, entries: list[dict[str, Any]]) -> None:
        """An offer's ``tracks``: whose each m-line is now, and when an m-line changed hands."""
        now = asyncio.get_running_loop().time()
        for entry in entries:
            before = self.tracks.get(entry["mid"])
            if before is not None and before["trackId"] != entry["trackId"]:
                self._reassigned[entry["mid"]] = now
            self.tracks[entry["mid"]] = entry

    def _next_track(
        self, mid: str, before: tuple[float, float], frame: tuple[float, float]
    ) -> bool:
        """Whether a decoded frame of the m-line ``mid`` starts the next track on it (the
        server reuses an m-line whose track ended for the next one of its kind): its media
        time jumped past the previous frame's by the server's reuse jump (``REUSE_JUMP``)
        and by far more than the time that passed, counted from the offer that gave the
        m-line away if the previous frame came before it. (``before``, ``frame``: media
        time and loop time, in seconds.)

        A media-time jump alone is not enough: the old track's last frame can jump too (a
        keyframe after a loss) and comes out of aiortc's jitter buffer only when the next
        track's first packet arrives, after a long wait, so it is the old track's.
        """
        media = frame[0] - before[0]
        if media < REUSE_JUMP - 0.1:
            return False
        since = self._reassigned.get(mid)
        start = since if since is not None and before[1] < since else frame[1]
        return media - (start - before[1]) > REUSE_JUMP / 2

    def _received_for(self, track: MediaStreamTrack) -> Received:
        """A new :class:`Received` record for an incoming track, labelled by the offer."""
        assert self.subscribe_pc is not None
        transceiver = next(
            t for t in self.subscribe_pc.getTransceivers() if t.receiver.track is track
        )
        assert transceiver.mid is not None  # set by the negotiation that brought the track
        entry = self.tracks[transceiver.mid]
        received = Received(entry["userId"], entry["source"], entry["kind"])
        self.received[entry["trackId"]] = received
        return received

    def _on_track(self, track: MediaStreamTrack) -> None:
        received = self._received_for(track)
        if self.replay is not None:
            self._check(track, received, self.replay)
            return
        task = asyncio.ensure_future(self._read(track, received))
        self._tasks.add(task)

    def _check(self, track: MediaStreamTrack, received: Received, replay: Replay) -> None:
        """Counts and checks a track's packets as they arrive, without decoding (replay)."""
        assert self.subscribe_pc is not None
        receiver = next(
            t.receiver for t in self.subscribe_pc.getTransceivers() if t.receiver.track is track
        )
        loop = asyncio.get_running_loop()

        def frame(number: int | None, clean: bool) -> None:
            now = loop.time()
            received.frames += 1
            if received.first_at is None:
                received.first_at = now
            if number is not None:
                received.numbers.append(number)
                received.times.append(now)
            received.unclean += not clean
            received.clean_run = received.clean_run + 1 if clean else 0
            self.changed.set()

        if track.kind == "video":
            publisher = replay.tracks.get(received.user_id)
            latest = (lambda: publisher.number - 1) if publisher is not None else (lambda: 0)
            checker = FrameChecker(replay.clip, latest, frame)
            on_packet = checker.on_packet
        else:

            def on_packet(packet: RtpPacket, starts_keyframe: bool) -> None:
                frame(None, True)

        replay.taps.append(ReceiverTap(receiver, track.kind, 1.0, on_packet))

    def _relabelled(self, mid: str | None, received: Received, jumped: bool) -> Received:
        """The record for an m-line's current track, after a jump (:meth:`_next_track`)."""
        entry = self.tracks.get(mid) if jumped and mid is not None else None
        if entry is None:
            return received
        if entry["trackId"] not in self.received:
            self.received[entry["trackId"]] = Received(
                entry["userId"], entry["source"], entry["kind"]
            )
        return self.received[entry["trackId"]]

    async def _read(self, track: MediaStreamTrack, received: Received) -> None:
        loop = asyncio.get_running_loop()
        pc = self.subscribe_pc
        transceiver = next(
            (t for t in pc.getTransceivers() if t.receiver.track is track), None
        ) if pc is not None else None  # fmt: skip
        mid = transceiver.mid if transceiver is not None else None
        last: tuple[float, float] | None = None  # (media time, loop time) of the last frame
        try:
            while True:
                frame = await track.recv()
                at = getattr(frame, "time", None)  # decoded frames have one
                now = loop.time()
                jumped = (
                    at is not None
                    and last is not None
                    and mid is not None
                    and self._next_track(mid, last, (at, now))
                )
                last = (at, now) if at is not None else last
                received = self._relabelled(mid, received, jumped)
                received.frames += 1
                if received.first_at is None:
                    received.first_at = now
                if isinstance(frame, VideoFrame):
                    number, clean = read_number(frame.to_ndarray(format="gray"))
                    received.numbers.append(number)
                    received.times.append(now)
                    received.unclean += not clean
                    received.clean_run = received.clean_run + 1 if clean else 0
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


# -- over Socket.IO: a load test of a running server (sfu loadtest) --------------------------


class LoadTestError(Exception):
    """The load test could not start: server unreachable, a join or a publish refused."""


def peer_configuration() -> RTCConfiguration:
    """What the server's own peer connections use: no ICE servers, ``max-bundle``."""
    from sfu.media.ice import rtc_configuration
    from sfu.settings import IceSettings

    return rtc_configuration(IceSettings(servers=[]))


class SocketIORouter:
    """The :class:`RouterLike` interface over one Socket.IO connection to a running server.

    ``join`` connects and sends ``join-room`` (mode ``sfu``); the server's ``sfu-*`` events go
    to the peer's ``send`` callback; ``handle`` emits a client event and returns its ack. With
    ``subscribe=False`` the subscribe offers are dropped: a publish-only participant whose
    downlink the server gives up on after ``sfu.negotiation_timeout_seconds``.
    """

    def __init__(self, url: str, room: str, *, subscribe: bool = True, timeout: float = 10) -> None:
        import socketio  # only the load test needs the client

        self.url, self.room = url, room
        self.subscribe = subscribe
        self.timeout = timeout
        self.sio = socketio.AsyncClient(reconnection=False)
        self.disconnected = False
        self.closed: list[dict] = []  # sfu-connection-closed payloads

    async def join(self, user_id: str, send: Callable[[str, dict], Awaitable[None]]) -> None:
        import socketio

        @self.sio.on("*")
        async def _any(event: str, *args: Any) -> None:
            payload = args[0] if args and isinstance(args[0], dict) else {}
            if event == "sfu-connection-closed":
                self.closed.append(payload)
            if event == "sfu-subscribe-offer" and not self.subscribe:
                return
            if event.startswith("sfu-"):
                await send(event, payload)

        @self.sio.on("disconnect")
        async def _gone(*args: Any) -> None:
            self.disconnected = True

        try:
            await self.sio.connect(self.url, transports=["websocket"], wait_timeout=self.timeout)
        except socketio.exceptions.ConnectionError as exc:
            await self.close()
            raise LoadTestError(f"cannot reach the server at {self.url}: {_reason(exc)}") from exc
        ack = await self.call(
            "join-room",
            {"roomId": self.room, "userId": user_id, "userName": user_id, "mode": "sfu"},
        )
        if not ack.get("ok"):
            raise LoadTestError(f"join-room refused for {user_id}: {ack.get('message', ack)}")
        if ack.get("mode") != "sfu":
            raise LoadTestError(f"room {self.room!r} is a {ack.get('mode')} room, not an SFU room")

    async def handle(self, user_id: str, event: str, payload: dict) -> dict:
        return await self.call(event, payload)

    async def call(self, event: str, payload: dict) -> dict:
        """The ack, or ``{ok: false}`` on a timeout or a lost connection (SfuPeer never raises)."""
        import socketio

        try:
            ack = await self.sio.call(event, payload, timeout=self.timeout)
        except socketio.exceptions.TimeoutError:
            return {"ok": False, "error": "timeout", "message": f"no answer to {event}"}
        except socketio.exceptions.SocketIOError as exc:
            return {"ok": False, "error": "disconnected", "message": f"{event}: {exc}"}
        return ack if isinstance(ack, dict) else {"ok": False, "error": "bad_ack", "message": ack}

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
        # A failed connect leaves engineio's aiohttp session open ("Unclosed client session").
        http = getattr(self.sio.eio, "http", None)
        if http is not None and not http.closed:
            await http.close()


def _reason(exc: BaseException) -> str:
    """The root cause of a failed connect, e.g. "Connection refused", in one line.

    python-socketio only says "Connection error"; aiohttp's error is in the chain.
    """
    seen: BaseException | None = exc
    reason = str(exc)
    while seen is not None:
        os_error = getattr(seen, "os_error", None) or (seen if isinstance(seen, OSError) else None)
        if isinstance(os_error, OSError) and os_error.errno:
            return os.strerror(os_error.errno)
        if seen is not exc and str(seen):
            reason = str(seen)
        seen = seen.__cause__ or seen.__context__
    return " ".join(reason.split()) or type(exc).__name__


@dataclass
class SubscriberResult:
    """What one subscriber decoded during the measuring window."""

    user_id: str
    tracks: int  # publishers' videos that reached it
    frames: int  # video frames decoded in the window, all tracks
    fps: float  # per track: comparable to the publishers' FPS
    min_fps: float  # its slowest track
    first_frame_seconds: float | None  # publish ack to the first frame, slowest publisher
    out_of_order: int
    unclean: int
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    audio_tracks: int = 0  # publishers' audio that reached it (with --audio)


@dataclass
class PublisherResult:
    user_id: str
    frames: int  # frames its track made in the window
    kbps: float


@dataclass
class LoadTestResult:
    server: str
    room: str
    width: int
    height: int
    seconds: float  # the measuring window
    setup_seconds: float  # joins, publishes and every first frame
    publishers: list[PublisherResult]
    subscribers: list[SubscriberResult]
    errors: list[str] = field(default_factory=list)

    @property
    def total_frames(self) -> int:
        return sum(s.frames for s in self.subscribers)

    @property
    def expected_frames(self) -> int:
        """Every frame the publishers made in the window, once per subscriber."""
        return len(self.subscribers) * sum(p.frames for p in self.publishers)

    @property
    def client_saturated(self) -> bool:
        """The publishers made under 90% of FPS: this process, not the server, is the limit."""
        return any(p.frames < 0.9 * FPS * self.seconds for p in self.publishers)

    @property
    def ok(self) -> bool:
        """Every subscriber decoded every publisher's video, and nothing broke."""
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        def ms(value: float | None) -> float | None:
            return None if value is None else round(value, 1)

        expected = self.expected_frames
        return {
            "server": self.server,
            "room": self.room,
            "videoSize": f"{self.width}x{self.height}",
            "fps": FPS,
            "seconds": round(self.seconds, 3),
            "setupSeconds": round(self.setup_seconds, 3),
            "publishers": [
                {
                    "userId": p.user_id,
                    "frames": p.frames,
                    "fps": round(p.frames / self.seconds, 2) if self.seconds else 0.0,
                    "kbps": round(p.kbps, 1),
                }
                for p in self.publishers
            ],
            "subscribers": [
                {
                    "userId": s.user_id,
                    "tracks": s.tracks,
                    "frames": s.frames,
                    "fps": round(s.fps, 2),
                    "minFps": round(s.min_fps, 2),
                    "firstFrameSeconds": (
                        None if s.first_frame_seconds is None else round(s.first_frame_seconds, 3)
                    ),
                    "outOfOrder": s.out_of_order,
                    "unclean": s.unclean,
                    "latencyMsP50": ms(s.latency_ms_p50),
                    "latencyMsP95": ms(s.latency_ms_p95),
                    "audioTracks": s.audio_tracks,
                }
                for s in self.subscribers
            ],
            "totalFrames": self.total_frames,
            "expectedFrames": expected,
            "delivered": round(self.total_frames / expected, 3) if expected else 0.0,
            "clientSaturated": self.client_saturated,
            "ok": self.ok,
            "errors": self.errors,
        }


async def _all(coros: list[Awaitable[Any]]) -> list[Any]:
    """``gather``, but the first failure cancels the rest (no joins left running)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _kbytes_sent(peer: SfuPeer) -> float:
    if peer.publish_pc is None:
        return 0.0
    stats = await peer.publish_sender("video").getStats()
    return sum(s.bytesSent for s in stats.values() if s.type == "outbound-rtp") / 1000


async def run_loadtest(
    url: str,
    room: str,
    *,
    publishers: int = 1,
    subscribers: int = 2,
    seconds: float = 10,
    width: int = WIDTH,
    height: int = HEIGHT,
    noise: int = 0,
    timeout: float = 20,
    progress: Callable[[str], None] | None = None,
    replay: bool = False,
    audio: bool = False,
) -> LoadTestResult:
    """Runs ``publishers`` video publishers and ``subscribers`` receivers in ``room``.

    ``replay``: publishers loop media encoded once and subscribers check packets without
    decoding (sfu.replay), so one machine can load a server with many streams. ``audio``:
    publishers send a tone besides their camera.

    Counting starts only once every publish was acknowledged and every subscriber decoded a
    first frame of every publisher (or ``timeout`` passed): start-up (ICE, DTLS, the keyframe
    gate) is reported as time to first frame, not mixed into the frame rates. Then the window
    lasts ``seconds``. Raises :class:`LoadTestError` if the test cannot start.
    """
    if publishers < 1 or subscribers < 1:
        raise ValueError("a load test needs at least one publisher and one subscriber")
    say = progress or (lambda message: None)
    loop = asyncio.get_running_loop()
    routers: list[SocketIORouter] = []
    all_peers: list[SfuPeer] = []

    shared: Replay | None = None
    audio_clip: AudioClip | None = None
    if replay:
        say(f"encoding the replayed clip ({width}x{height})")
        clip = await loop.run_in_executor(None, VideoClip.encode, width, height, noise)
        shared = Replay(clip)
        if audio:
            audio_clip = AudioClip.encode()

    def make(user_id: str, subscribe: bool) -> SfuPeer:
        router = SocketIORouter(url, room, subscribe=subscribe)
        routers.append(router)
        peer = SfuPeer(router, user_id, peer_configuration(), replay=shared)
        all_peers.append(peer)
        return peer

    subs = [make(f"sub-{i + 1}", True) for i in range(subscribers)]
    pubs = [make(f"pub-{i + 1}", False) for i in range(publishers)]
    tracks: dict[str, NumberedVideoTrack | ReplayVideoTrack] = {}
    for p in pubs:
        if shared is not None:
            tracks[p.user_id] = shared.tracks[p.user_id] = ReplayVideoTrack(shared.clip)
        else:
            tracks[p.user_id] = NumberedVideoTrack(noise, width, height)
    acked: dict[str, float] = {}

    def sources(user_id: str) -> dict[str, MediaStreamTrack]:
        out: dict[str, MediaStreamTrack] = {"camera": tracks[user_id]}
        if audio:
            out["microphone"] = ReplayAudioTrack(audio_clip) if audio_clip else ToneTrack()
        return out

    async def publish(peer: SfuPeer) -> None:
        ack = await peer.publish(sources(peer.user_id))
        if not ack.get("ok"):
            raise LoadTestError(f"sfu-publish refused for {peer.user_id}: {ack.get('message')}")
        acked[peer.user_id] = loop.time()

    async def first_frames(within: float) -> None:
        for sub in subs:
            for pub in pubs:
                await sub.wait_video(pub.user_id, 1, timeout=max(0.1, within - loop.time()))

    try:
        began = loop.time()
        say(f"joining {subscribers} subscriber(s) to {room!r} on {url}")
        # One first, so an unreachable server is a single clear error, then the rest at once.
        await subs[0].join()
        await _all([s.join() for s in subs[1:]])
        say(f"joining and publishing {publishers} publisher(s)")
        await _all([p.join() for p in pubs])
        await asyncio.wait_for(_all([publish(p) for p in pubs]), timeout)
        say("waiting for every subscriber's first frames")
        try:
            await first_frames(began + timeout)
        except TimeoutError:
            pass  # reported below as missing tracks; measure what does flow anyway
        setup = loop.time() - began

        # The window: counts and stats at its start and end.
        say(f"measuring for {seconds:g} s")
        start_at = loop.time()
        made = {name: track.number for name, track in tracks.items()}
        sent = {p.user_id: await _kbytes_sent(p) for p in pubs}
        marks = {
            (s.user_id, k): (len(r.numbers), r.unclean) for s in subs for k, r in s.received.items()
        }
        await asyncio.sleep(seconds)
        window = loop.time() - start_at
        publisher_results = [
            PublisherResult(
                p.user_id,
                tracks[p.user_id].number - made[p.user_id],
                (await _kbytes_sent(p) - sent[p.user_id]) * 8 / window,
            )
            for p in pubs
        ]
        errors: list[str] = []
        subscriber_results = []
        for sub in subs:
            result = _subscriber_result(sub, pubs, tracks, acked, marks, window)
            subscriber_results.append(result)
            missing = [
                p.user_id for p in pubs if not (r := sub.video_from(p.user_id)) or not r.numbers
            ]
            if missing:
                errors.append(f"{sub.user_id} received no video from {', '.join(missing)}")
        for router, peer in zip(routers, all_peers, strict=True):
            if router.disconnected:
                errors.append(f"{peer.user_id} lost its Socket.IO connection")
            for closed in router.closed:
                # A publisher's unanswered downlink closing is expected (it does not subscribe).
                if router.subscribe or closed.get("target") != "subscribe":
                    errors.append(
                        f"the server closed {peer.user_id}'s {closed.get('target')} connection "
                        f"({closed.get('reason')})"
                    )
            for refused in peer.answer_errors:
                errors.append(
                    f"{peer.user_id}'s subscribe answer refused: {refused.get('message')}"
                )
        return LoadTestResult(
            url, room, width, height, window, setup, publisher_results, subscriber_results, errors
        )
    except TimeoutError as exc:
        raise LoadTestError(f"the server at {url} did not answer within {timeout:g} s") from exc
    finally:
        say("closing")
        await asyncio.gather(*(p.close() for p in all_peers), return_exceptions=True)
        await asyncio.gather(*(r.close() for r in routers), return_exceptions=True)


def _subscriber_result(
    sub: SfuPeer,
    pubs: list[SfuPeer],
    tracks: dict[str, NumberedVideoTrack | ReplayVideoTrack],
    acked: dict[str, float],
    marks: dict[tuple[str, str], tuple[int, int]],
    window: float,
) -> SubscriberResult:
    frames = out_of_order = unclean = 0
    rates: list[float] = []
    firsts: list[float] = []
    missing = False
    latencies: list[float] = []
    for pub in pubs:
        received = sub.video_from(pub.user_id)
        if received is None or not received.numbers:
            rates.append(0.0)
            missing = True
            continue
        key = next(k for k, r in sub.received.items() if r is received)
        count, dirty = marks.get((sub.user_id, key), (0, 0))
        if count > len(received.numbers):  # a new subscribe session replaced the track
            count, dirty = 0, 0
        numbers, times = received.numbers, received.times
        got = len(numbers) - count
        frames += got
        rates.append(got / window)
        unclean += received.unclean - dirty
        # The number before the window too, so a step back at its very start counts.
        seen = numbers[max(0, count - 1) :]
        out_of_order += sum(b <= a for a, b in zip(seen, seen[1:], strict=False))
        ack = acked.get(pub.user_id)
        first = received.first_at
        if first is None or ack is None:
            missing = True
        else:
            firsts.append(max(0.0, first - ack))
        made_at = tracks[pub.user_id].made_at
        for number, at in zip(numbers[count:], times[count:], strict=True):
            if number < len(made_at):  # else misread (only possible in a damaged picture)
                latencies.append((at - made_at[number]) * 1000)
    latencies.sort()

    def pick(q: float) -> float | None:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None

    return SubscriberResult(
        user_id=sub.user_id,
        tracks=sum(bool((r := sub.video_from(p.user_id)) and r.numbers) for p in pubs),
        frames=frames,
        fps=sum(rates) / len(rates) if rates else 0.0,
        min_fps=min(rates, default=0.0),
        first_frame_seconds=None if missing or not firsts else max(firsts),
        out_of_order=out_of_order,
        unclean=unclean,
        latency_ms_p50=pick(0.5),
        latency_ms_p95=pick(0.95),
        audio_tracks=sum(r.kind == "audio" and r.frames > 0 for r in sub.received.values()),
    )
