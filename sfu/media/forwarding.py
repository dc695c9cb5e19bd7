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
import struct
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
from aiortc.codecs.vpx import PACKET_MAX as VP8_PACKET_MAX
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTP_HISTORY_SIZE,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    wrap_rtx,
)
from aiortc.utils import random32, uint16_add, uint32_add

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
    # The frame cut into RTP payload pieces, once for all subscribers (see Packer.pack).
    chunks: list[bytes] | None = field(default=None, repr=False, compare=False)
    # When the publisher captured it, on its wall clock (from its RTCP sender reports; NTP
    # seconds): one clock for a publisher's audio and video. None before the first report.
    capture: float | None = None

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
        # The publisher's last sender report for this stream: (NTP seconds, RTP timestamp).
        self.sender_report: tuple[float, int] | None = None
        self._handle_rtcp = receiver._handle_rtcp_packet
        receiver._RTCRtpReceiver__decoder_queue = _TapQueue(self._frame)  # type: ignore[attr-defined]
        receiver._handle_rtp_packet = self._rtp  # type: ignore[method-assign]
        receiver._handle_rtcp_packet = self._rtcp  # type: ignore[method-assign]
        # aiortc sends a PLI itself when its jitter buffer overflows or a packet is far
        # out of order: frames were dropped, so forwarding must wait for a keyframe too.
        receiver._send_rtcp_pli = self._aiortc_pli  # type: ignore[method-assign]

    def _frame(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        self._released = True
        capture = None
        if self.sender_report is not None:
            ntp, rtp = self.sender_report
            # aiortc counts frame timestamps from the stream's first one: back to RTP's.
            mapper = self.receiver._RTCRtpReceiver__timestamp_mapper  # type: ignore[attr-defined]
            raw = (frame.timestamp + (mapper._origin or 0)) % (1 << 32)
            # Signed RTP distance to the report (either side of it, across a wrap).
            ticks = (raw - rtp + (1 << 31)) % (1 << 32) - (1 << 31)
            capture = ntp + ticks / codec.clockRate
        self._on_frame(
            EncodedFrame(
                data=frame.data,
                timestamp=frame.timestamp,
                kind=self.kind,
                codec=codec.name,
                clock_rate=codec.clockRate,
                keyframe=is_keyframe(codec.name, frame.data),
                capture=capture,
            )
        )

    async def _rtcp(self, packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket) and (self.ssrc is None or packet.ssrc == self.ssrc):
            info = packet.sender_info
            self.sender_report = (info.ntp_timestamp / (1 << 32), info.rtp_timestamp)
        await self._handle_rtcp(packet)

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
        cap_receiver_remb(self.receiver, cap)


def cap_receiver_remb(receiver: RTCRtpReceiver, cap: Callable[[], int]) -> None:
    """Caps the REMB an aiortc receiver sends by ``cap()`` (also: a slow synthetic peer)."""
    name = "_RTCRtpReceiver__remote_bitrate_estimator"
    estimator = getattr(receiver, name)
    if estimator is not None:
        setattr(receiver, name, _CappedEstimator(estimator, cap))


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
        """The frame's RTP payloads, byte for byte what aiortc's packetizers make.

        The frame is cut once, for every subscriber (the same :class:`EncodedFrame` goes to
        all of them): only the 4-byte VP8 descriptor, which carries this subscriber's
        picture id, is made per subscriber.
        """
        self.packed += 1
        if self.codec == "VP8":
            # The sender numbers pictures itself, consecutively: never drop a single
            # P-frame from a forwarded stream, only runs up to the next keyframe.
            picture_id = self._picture_id
            self._picture_id = (picture_id + 1) % (1 << 15)
            first = bytes(VpxPayloadDescriptor(1, 0, picture_id=picture_id))
            chunks = frame.chunks
            if chunks is None:
                # aiortc's descriptor is always 4 bytes (2-byte picture id): one cut fits all.
                size = VP8_PACKET_MAX - len(first)
                data = frame.data
                chunks = frame.chunks = [data[i : i + size] for i in range(0, len(data), size)]
            if not chunks:
                return [], frame.timestamp
            rest = bytes(VpxPayloadDescriptor(0, 0, picture_id=picture_id))
            payloads = [first + chunks[0]]
            payloads.extend([rest + chunk for chunk in chunks[1:]])
            return payloads, frame.timestamp
        if self.codec == "H264":
            # No per-subscriber state in H.264 payloads: share them outright.
            if frame.chunks is None:
                frame.chunks = H264Encoder._packetize(H264Encoder._split_bitstream(frame.data))
            return frame.chunks, frame.timestamp
        return [frame.data], frame.timestamp

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
    loop = ForwardingSendLoop(sender)
    sender._run_rtp = loop.run  # type: ignore[method-assign]
    sender._retransmit = loop.retransmit  # type: ignore[method-assign]


# Seconds from the NTP epoch (1900) to the Unix epoch (1970).
_NTP_UNIX_OFFSET = 2208988800


def _ntp_time(unix_time: float) -> int:
    """64-bit NTP time (32.32 fixed point), as aiortc's datetime-based clock gives it."""
    seconds = int(unix_time)
    return (seconds + _NTP_UNIX_OFFSET) << 32 | int((unix_time - seconds) * (1 << 32))


class ForwardingSendLoop:
    """A forwarding sender's RTP loop: aiortc's ``RTCRtpSender._run_rtp``, made lean.

    Same packets on the wire (sequence numbers, timestamps, marker, the mid and
    abs-send-time header extensions, NACK/RTX history, the counters RTCP sender reports
    use), but per packet it only packs a 12-byte header and joins bytes: aiortc builds an
    :class:`RtpPacket`, two datetime-based NTP clock readings and the header extensions
    from scratch for every packet of every subscriber. The header extension block is
    made once by aiortc's own :class:`HeaderExtensionsMap`, only the 3 abs-send-time
    bytes change per packet.
    """

    def __init__(self, sender: RTCRtpSender) -> None:
        self.sender = sender
        # seq % RTP_HISTORY_SIZE -> (seq, timestamp, marker, payload, abs_send_time)
        self.history: dict[int, tuple[int, int, int, bytes, int]] = {}
        self.payload_type = 0

    def _extension_block(self) -> tuple[bytes, bytes, bool]:
        """What goes before and after the abs-send-time value (aiortc's encoding)."""
        sender = self.sender
        ext_map: HeaderExtensionsMap = sender._RTCRtpSender__rtp_header_extensions_map  # type: ignore[attr-defined]
        mid: str | None = sender._RTCRtpSender__mid  # type: ignore[attr-defined]

        def block(abs_send_time: int) -> bytes:
            packet = RtpPacket()
            packet.extensions.mid = mid
            packet.extensions.abs_send_time = abs_send_time
            return packet.serialize(ext_map)[12:]

        low, high = block(0), block(0xFFFFFF)
        if low == high:  # no abs-send-time negotiated
            return low, b"", False
        pos = next(i for i in range(len(low)) if low[i] != high[i])
        assert low[pos : pos + 3] == b"\0\0\0" and high[pos : pos + 3] == b"\xff\xff\xff"
        return low[:pos], low[pos + 3 :], True

    async def run(self, codec: RTCRtpCodecParameters) -> None:
        sender = self.sender
        sender._RTCRtpSender__rtp_started.set()  # type: ignore[attr-defined]
        self.payload_type = payload_type = codec.payloadType
        head, tail, with_time = self._extension_block()
        # First header byte: version 2, extension bit if there is an extension block.
        first_byte = 0x90 if head else 0x80
        sequence_number = random_sequence_number()
        timestamp_origin = random32()
        history = self.history
        pack_header = struct.Struct("!BBHLL").pack
        now = time.time
        try:
            while True:
                if not sender._RTCRtpSender__track:  # type: ignore[attr-defined]
                    await asyncio.sleep(0.02)
                    continue
                enc_frame = await sender._next_encoded_frame(codec)
                if enc_frame is None:
                    continue
                timestamp = uint32_add(timestamp_origin, enc_frame.timestamp)
                ssrc = sender._ssrc
                payloads = enc_frame.payloads
                last = len(payloads) - 1
                send_rtp = sender.transport._send_rtp
                octets = 0
                for i, payload in enumerate(payloads):
                    marker = 1 if i == last else 0
                    # abs-send-time: NTP time as 6.18 fixed point, 24 bits (aiortc: ntp >> 14).
                    abs_time = int((now() + _NTP_UNIX_OFFSET) * 262144) & 0xFFFFFF
                    header = pack_header(
                        first_byte, (marker << 7) | payload_type, sequence_number, timestamp, ssrc
                    )
                    if with_time:
                        data = b"".join((header, head, abs_time.to_bytes(3), tail, payload))
                    else:
                        data = b"".join((header, head, payload))
                    history[sequence_number % RTP_HISTORY_SIZE] = (
                        sequence_number,
                        timestamp,
                        marker,
                        payload,
                        abs_time,
                    )
                    await send_rtp(data)
                    octets += len(payload)
                    sequence_number = uint16_add(sequence_number, 1)
                # What aiortc's RTCP sender reports use, updated once per frame (all its
                # packets share one RTP timestamp).
                sender._RTCRtpSender__ntp_timestamp = _ntp_time(now())  # type: ignore[attr-defined]
                sender._RTCRtpSender__rtp_timestamp = timestamp  # type: ignore[attr-defined]
                sender._RTCRtpSender__octet_count += octets  # type: ignore[attr-defined]
                sender._RTCRtpSender__packet_count += len(payloads)  # type: ignore[attr-defined]
        except (asyncio.CancelledError, ConnectionError, MediaStreamError):
            pass
        except Exception:
            # Like aiortc: the loop must end cleanly or RTCRtpSender.stop() hangs.
            logger.warning("forwarding send loop failed", exc_info=True)
        track = sender._RTCRtpSender__track  # type: ignore[attr-defined]
        if track:
            track.stop()
            sender._RTCRtpSender__track = None  # type: ignore[attr-defined]
        sender._RTCRtpSender__encoder = None  # type: ignore[attr-defined]
        sender._RTCRtpSender__rtp_exited.set()  # type: ignore[attr-defined]

    async def retransmit(self, sequence_number: int) -> None:
        """Resends a packet a subscriber NACKed (as RTX if negotiated), like aiortc."""
        entry = self.history.get(sequence_number % RTP_HISTORY_SIZE)
        if entry is None or entry[0] != sequence_number:
            return
        sender = self.sender
        seq, timestamp, marker, payload, abs_time = entry
        packet = RtpPacket(
            payload_type=self.payload_type,
            marker=marker,
            sequence_number=seq,
            timestamp=timestamp,
            ssrc=sender._ssrc,
            payload=payload,
        )
        packet.extensions.mid = sender._RTCRtpSender__mid  # type: ignore[attr-defined]
        packet.extensions.abs_send_time = abs_time
        rtx_payload_type = sender._RTCRtpSender__rtx_payload_type  # type: ignore[attr-defined]
        if rtx_payload_type is not None:
            rtx_seq = sender._RTCRtpSender__rtx_sequence_number  # type: ignore[attr-defined]
            packet = wrap_rtx(packet, rtx_payload_type, rtx_seq, sender._rtx_ssrc)
            sender._RTCRtpSender__rtx_sequence_number = uint16_add(rtx_seq, 1)  # type: ignore[attr-defined]
        ext_map = sender._RTCRtpSender__rtp_header_extensions_map  # type: ignore[attr-defined]
        await sender.transport._send_rtp(packet.serialize(ext_map))


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
