"""The encoded pass-through, and every touch of aiortc's private API.

aiortc has no supported way to receive or send media without decoding and encoding it
(aiortc#449), so this module reaches into aiortc 1.16 internals. Nothing else in the
project does: tests/media/test_aiortc_contract.py checks each internal used here, so an
aiortc upgrade that moves one fails loudly instead of silently re-encoding or stalling.

Receive side (per :class:`~aiortc.RTCRtpReceiver`): the receiver's decoder queue is
replaced by a :class:`_TapQueue` that hands each reassembled encoded frame to the router on
the event loop (the decoder thread aiortc starts then only waits for shutdown), and
``_handle_rtp_packet`` is wrapped to read the raw RTP (SSRC, audio level) and to detect
jitter-buffer stalls. Send side (per :class:`~aiortc.RTCRtpSender`): the sender's encoder
is a :class:`Packer` that can only packetize already encoded frames, a subscriber's
PLI/FIR goes to a callback instead of the (absent) encoder, and REMB reaches a callback.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
import av
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtpPacket, pack_remb_fci

logger = logging.getLogger(__name__)

# How many video encodes a forwarding sender attempted: must stay 0 (see Packer.encode).
FORWARDING_ENCODES = 0


@dataclass(slots=True)
class EncodedFrame:
    """One encoded media frame as the publisher sent it (no decoding, no re-encoding).

    ``timestamp`` is in RTP clock units, counted from the producer's first frame.
    """

    data: bytes
    timestamp: int
    kind: str
    codec: str
    clock_rate: int
    keyframe: bool

    def to_packet(self) -> av.Packet:
        """The frame as an :class:`av.Packet`, e.g. for a muxer or a decoder."""
        packet = av.Packet(self.data)
        packet.pts = self.timestamp
        packet.dts = self.timestamp
        packet.time_base = fractions.Fraction(1, self.clock_rate)
        packet.is_keyframe = self.keyframe
        return packet


def is_keyframe(codec: str, data: bytes) -> bool:
    """Whether an encoded VP8 or H.264 (Annex B) frame can be decoded on its own."""
    if codec == "VP8":
        # RFC 6386 9.1: frame tag bit 0 is 0 for a key frame, then the start code 9d 01 2a.
        return len(data) >= 10 and not data[0] & 1 and data[3:6] == b"\x9d\x01\x2a"
    if codec == "H264":
        # An IDR slice (5) or a sequence parameter set (7) among the first NAL units.
        pos = 0
        for _ in range(8):
            pos = data.find(b"\x00\x00\x01", pos)
            if pos < 0 or pos + 3 >= len(data):
                return False
            nal_type = data[pos + 3] & 0x1F
            if nal_type in (5, 7):
                return True
            pos += 3
        return False
    return True  # audio: every frame stands alone


# --- receive side ----------------------------------------------------------------------


class _TapQueue:
    """Stands in for a receiver's decoder queue: frames go to a callback, not a decoder.

    aiortc puts ``(codec, JitterFrame)`` on the queue from ``_handle_rtp_packet`` (on the
    event loop) and ``None`` when the receiver stops; its decoder thread calls ``get()``,
    which here just waits for that ``None`` so the thread ends with the receiver.
    """

    def __init__(self, on_frame: Callable[[RTCRtpCodecParameters, JitterFrame], None]) -> None:
        self._on_frame = on_frame
        self._stopped = threading.Event()

    def put(self, item: tuple[RTCRtpCodecParameters, JitterFrame] | None) -> None:
        if item is None:
            self._stopped.set()
            return
        try:
            self._on_frame(*item)
        except Exception:  # a bug here must not kill the receiver's RTP handling
            logger.exception("forwarding callback failed")

    def get(self) -> None:
        self._stopped.wait()
        return None


class ReceiverTap:
    """The encoded output of one :class:`~aiortc.RTCRtpReceiver`, without decoding.

    Install it in the peer connection's ``track`` event handler (synchronously), before
    aiortc starts the receiver. ``on_frame`` gets every reassembled :class:`EncodedFrame`;
    ``on_picture_loss`` is called when frames were lost for good (a jitter-buffer stall
    skipped, or aiortc's own jitter buffer overflowed), so the caller should drop to the
    next keyframe and ask for one. ``request_keyframe()`` sends a PLI now, unthrottled.
    """

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        kind: str,
        on_frame: Callable[[EncodedFrame], None],
        on_picture_loss: Callable[[], None],
        jitter_timeout: float,
    ) -> None:
        self.receiver = receiver
        self.kind = kind
        self.ssrc: int | None = None
        self.audio_level: tuple[bool, int] | None = None  # (voice activity, -dBov 0..127)
        self.audio_level_time = 0.0
        self.packets = 0
        self.stalls = 0
        self._on_frame = on_frame
        self._on_picture_loss = on_picture_loss
        self._jitter_timeout = jitter_timeout
        self._pending_since: float | None = None
        self._released = False
        self._handle_rtp = receiver._handle_rtp_packet
        self._send_pli = receiver._send_rtcp_pli
        self._rtx_types: set[int] | None = None
        receiver._RTCRtpReceiver__decoder_queue = _TapQueue(self._frame)  # type: ignore[attr-defined]
        receiver._handle_rtp_packet = self._rtp  # type: ignore[method-assign]
        # aiortc sends a PLI itself when its jitter buffer overflows or a packet is far
        # out of order: frames were dropped, so forwarding must wait for a keyframe too.
        receiver._send_rtcp_pli = self._aiortc_pli  # type: ignore[method-assign]

    def _frame(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        self._released = True
        self._on_frame(
            EncodedFrame(
                data=frame.data,
                timestamp=frame.timestamp,
                kind=self.kind,
                codec=codec.name,
                clock_rate=codec.clockRate,
                keyframe=is_keyframe(codec.name, frame.data),
            )
        )

    async def _rtp(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        self.packets += 1
        if self._rtx_types is None:
            codecs = self.receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
            self._rtx_types = {pt for pt, c in codecs.items() if c.name.lower() == "rtx"}
        if packet.payload_type not in self._rtx_types:
            self.ssrc = packet.ssrc
            level = packet.extensions.audio_level
            if level is not None:
                self.audio_level = level
                self.audio_level_time = time.monotonic()
        self._released = False
        await self._handle_rtp(packet, arrival_time_ms)
        if self.kind != "video":
            return
        now = time.monotonic()
        if self._released or self._pending_since is None:
            # The packets still held belong to the frame that has just started.
            self._pending_since = now
        elif now - self._pending_since > self._jitter_timeout:
            # A packet is missing and has not come back (NACK/RTX) in time: skip ahead
            # rather than stall until aiortc's 512-packet buffer overflows.
            self.stalls += 1
            reset_jitter_buffer(self.receiver)
            self._pending_since = None
            self._on_picture_loss()

    async def _aiortc_pli(self, media_ssrc: int) -> None:
        self._on_picture_loss()

    async def request_keyframe(self) -> None:
        """Sends a PLI (RFC 4585) for this receiver's stream to the publisher."""
        if self.ssrc is not None:
            await self._send_pli(self.ssrc)

    async def send_remb(self, bitrate: int) -> None:
        """Sends a REMB (receiver estimated maximum bitrate) for this stream now."""
        rtcp_ssrc = self.receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
        if self.ssrc is None or rtcp_ssrc is None:
            return
        packet = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP,
            ssrc=rtcp_ssrc,
            media_ssrc=0,
            fci=pack_remb_fci(bitrate, [self.ssrc]),
        )
        await self.receiver._send_rtcp(packet)

    def cap_remb(self, cap: Callable[[], int]) -> None:
        """Caps the REMB aiortc sends for this receiver (its own uplink estimate) by ``cap()``.

        The publisher then never sends more than the slowest subscriber, or the configured
        maximum, can take.
        """
        name = "_RTCRtpReceiver__remote_bitrate_estimator"
        estimator = getattr(self.receiver, name)
        if estimator is not None:
            setattr(self.receiver, name, _CappedEstimator(estimator, cap))


class _CappedEstimator:
    """aiortc's RemoteBitrateEstimator, with its REMB value capped."""

    def __init__(self, estimator: Any, cap: Callable[[], int]) -> None:
        self._estimator = estimator
        self._cap = cap

    def add(self, **kwargs: Any) -> tuple[int, list[int]] | None:
        remb = self._estimator.add(**kwargs)
        if remb is None:
            return None
        return min(remb[0], self._cap()), remb[1]


def reset_jitter_buffer(receiver: RTCRtpReceiver) -> None:
    """Drops every packet a receiver's jitter buffer holds; the next packet starts afresh."""
    buffer: JitterBuffer = receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
    buffer._packets = [None] * buffer.capacity
    buffer._origin = None


# --- send side -------------------------------------------------------------------------


class Packer:
    """A sender's 'encoder' that only packetizes frames that are already encoded.

    It is installed as the sender's encoder before the sender starts, so aiortc never
    creates a real one; :meth:`encode` exists only to count (and refuse) any attempt.
    Setting ``target_bitrate`` (aiortc does on a subscriber's REMB) calls ``on_remb``.
    """

    def __init__(self, codec: str, on_remb: Callable[[int], None]) -> None:
        self.codec = codec
        self.packed = 0
        self._on_remb = on_remb
        self._bitrate = 0
        self._picture_id = 0

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        global FORWARDING_ENCODES
        FORWARDING_ENCODES += 1
        raise RuntimeError("a forwarding sender must not encode")

    def pack(self, frame: EncodedFrame) -> tuple[list[bytes], int]:
        self.packed += 1
        if self.codec == "VP8":
            payloads = Vp8Encoder._packetize(frame.data, self._picture_id)
            # The sender numbers pictures itself, consecutively: never drop a single
            # P-frame from a forwarded stream, only runs up to the next keyframe.
            self._picture_id = (self._picture_id + 1) % (1 << 15)
        elif self.codec == "H264":
            payloads = H264Encoder._packetize(H264Encoder._split_bitstream(frame.data))
        else:
            payloads = [frame.data]
        return payloads, frame.timestamp

    @property
    def target_bitrate(self) -> int:
        return self._bitrate

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        self._bitrate = bitrate
        self._on_remb(bitrate)


def prepare_sender(
    sender: RTCRtpSender,
    packer: Packer,
    on_keyframe_request: Callable[[], None],
    stream_id: str,
) -> None:
    """Makes a sender forward encoded frames: install the packer, route PLI/FIR, set msid.

    Call it before the sender starts (before the negotiation that activates it).
    """
    sender._RTCRtpSender__encoder = packer  # type: ignore[attr-defined]
    sender._send_keyframe = on_keyframe_request  # type: ignore[method-assign]
    # aiortc gives every sender of a connection the same stream id; browsers group a
    # participant's camera and microphone by it.
    sender._stream_id = stream_id


def sender_running(sender: RTCRtpSender) -> bool:
    """Whether a sender's RTP loop runs (aiortc starts it once DTLS is connected)."""
    task = getattr(sender, "_RTCRtpSender__rtp_task", None)
    return task is not None and not task.done()


def sender_packer(sender: RTCRtpSender) -> Any:
    """The encoder object a sender uses now (a :class:`Packer` if forwarding is intact)."""
    return sender._RTCRtpSender__encoder  # type: ignore[attr-defined]


class ForwardingTrack(MediaStreamTrack):
    """A subscriber's copy of one producer: a bounded queue of encoded frames.

    Video waits for a keyframe before it forwards anything; when the queue is full (the
    subscriber's sender fell behind) it is emptied and waits for the next keyframe again,
    calling ``on_overflow`` so the caller can ask the publisher for one.
    """

    def __init__(
        self,
        kind: str,
        track_id: str,
        max_frames: int,
        on_overflow: Callable[[], None],
    ) -> None:
        super().__init__()
        self.kind = kind
        self._id = track_id
        self.max_frames = max_frames
        self.waiting_keyframe = kind == "video"
        self.waiting_since = time.monotonic()
        self.forwarded = 0
        self.dropped = 0
        self.overflows = 0
        self.max_depth = 0
        self._frames: deque[EncodedFrame] = deque()
        self._wakeup = asyncio.Event()
        self._on_overflow = on_overflow

    def push(self, frame: EncodedFrame) -> None:
        """Queues a frame (on the event loop); never blocks, never grows past the bound."""
        if self.readyState != "live":
            return
        if self.waiting_keyframe:
            if not frame.keyframe:
                self.dropped += 1
                return
            self.waiting_keyframe = False
        if len(self._frames) >= self.max_frames:
            self.overflows += 1
            if self.kind == "video":
                self.dropped += len(self._frames)
                self._frames.clear()
                if not frame.keyframe:
                    self.dropped += 1
                    self.waiting_keyframe = True
                    self.waiting_since = time.monotonic()
                    self._on_overflow()
                    return
            else:
                self._frames.popleft()
                self.dropped += 1
        self._frames.append(frame)
        self.max_depth = max(self.max_depth, len(self._frames))
        self._wakeup.set()

    @property
    def depth(self) -> int:
        """Frames queued now. (Not ``__len__``: aiortc tests tracks for truth.)"""
        return len(self._frames)

    def restart(self) -> None:
        """Drops what is queued and waits for a keyframe (frames were lost upstream)."""
        if self.kind == "video" and not self.waiting_keyframe:
            self.dropped += len(self._frames)
            self._frames.clear()
            self.waiting_keyframe = True
            self.waiting_since = time.monotonic()

    async def recv(self) -> EncodedFrame:  # type: ignore[override]
        while not self._frames:
            if self.readyState != "live":
                raise MediaStreamError
            self._wakeup.clear()
            await self._wakeup.wait()
        self.forwarded += 1
        return self._frames.popleft()

    def stop(self) -> None:
        super().stop()
        self._frames.clear()
        self._wakeup.set()  # a sender waiting in recv() ends with MediaStreamError


class PeerActivity:
    """When a peer connection last received RTCP (or RTP) from its remote peer.

    aiortc has no ``disconnected`` state and reports ``failed`` only after ICE consent
    checks fail (about 30 s); a peer that sends media sends RTCP about every second.
    """

    def __init__(self) -> None:
        self.last = time.monotonic()
        self._wrapped: list[Any] = []

    def attach(self, pc: Any) -> None:
        """Watches the DTLS transports of ``pc`` (again after each negotiation: idempotent)."""
        for transceiver in pc.getTransceivers():
            transport = transceiver.receiver.transport
            if any(t is transport for t in self._wrapped):
                continue
            self._wrapped.append(transport)
            transport._handle_rtcp_data = self._wrap(transport._handle_rtcp_data)
            transport._handle_rtp_data = self._wrap(transport._handle_rtp_data)

    def _wrap(self, original: Callable[..., Awaitable[None]]) -> Callable[..., Any]:
        async def handle(*args: Any, **kwargs: Any) -> None:
            self.last = time.monotonic()
            await original(*args, **kwargs)

        return handle


# --- ICE -------------------------------------------------------------------------------

_original_get_host_addresses = aioice.ice.get_host_addresses
_pinned_addresses: list[str] = []


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _pinned_addresses:
        return [a for a in _pinned_addresses if (":" in a and use_ipv6) or ("." in a and use_ipv4)]
    return _original_get_host_addresses(use_ipv4, use_ipv6)


def pin_host_addresses(addresses: Iterable[str]) -> None:
    """Makes every ICE agent of this process gather host candidates on these addresses only.

    An empty list restores aioice's default (all non-loopback interfaces).
    """
    _pinned_addresses[:] = list(addresses)
    aioice.ice.get_host_addresses = _get_host_addresses


# --- testing and load generation -------------------------------------------------------


@dataclass
class LinkEmulator:
    """Emulates a poor link on a peer connection's outgoing RTP/RTCP (``tc netem`` stand-in).

    ``delay`` seconds are awaited before each packet goes out (a slow link makes the
    sender fall behind); ``drop`` decides, from the plain RTP packet bytes, what is lost.
    """

    delay: float = 0.0
    drop: Callable[[bytes], bool] | None = None
    sent: int = 0
    dropped: int = 0
    _originals: list[tuple[Any, Any]] = field(default_factory=list)

    def attach(self, pc: Any) -> None:
        """Wraps the DTLS transports of ``pc`` (all its transceivers)."""
        for transceiver in pc.getTransceivers():
            transport = transceiver.sender.transport
            if any(t is transport for t, _ in self._originals):
                continue
            original = transport._send_rtp
            self._originals.append((transport, original))
            transport._send_rtp = self._wrap(original)

    def _wrap(self, original: Callable[[bytes], Awaitable[None]]) -> Callable[[bytes], Any]:
        async def send(data: bytes) -> None:
            if self.drop is not None and self.drop(data):
                self.dropped += 1
                return
            if self.delay:
                await asyncio.sleep(self.delay)
            self.sent += 1
            await original(data)

        return send


def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> Awaitable[None]:
    """Sends a PLI from a receiver, as a browser does when it lost a picture (for tests)."""
    return receiver._send_rtcp_pli(media_ssrc)


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Calls ``callback`` whenever a (publishing, encoding) sender is asked for a keyframe."""
    original = sender._send_keyframe

    def hooked() -> None:
        callback()
        original()

    sender._send_keyframe = hooked  # type: ignore[method-assign]


def restrict_codecs(transceiver: Any, mime_type: str) -> bool:
    """Keeps only ``mime_type`` (and its RTX) among a transceiver's negotiated codecs.

    For an answer: aiortc fixes the codecs in setRemoteDescription, before the ``track``
    event where codec preferences could be set. Returns False if no codec is left.
    """
    kept = [c for c in transceiver._codecs if c.mimeType.lower() == mime_type.lower()]
    types = {c.payloadType for c in kept}
    rtx = [
        c
        for c in transceiver._codecs
        if c.name.lower() == "rtx" and c.parameters.get("apt") in types
    ]
    if kept:
        transceiver._codecs = kept + rtx
    return bool(kept)
