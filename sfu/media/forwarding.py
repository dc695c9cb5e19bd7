"""The RTP pass-through, and every touch of aiortc's private API.

aiortc has no supported way to receive or send media without decoding and encoding it
(aiortc#449), so this module reaches into aiortc 1.16 internals. Nothing else in the
project does: tests/media/test_aiortc_contract.py checks each internal used here, so an
aiortc upgrade that moves one fails loudly instead of silently re-encoding or stalling.

Receive side (per :class:`~aiortc.RTCRtpReceiver`): the receiver's jitter buffer is wrapped
by a :class:`_JitterTap` that hands every media packet (retransmissions unwrapped) to the
router as it arrives; the real jitter buffer reassembles frames only while an in-process
consumer (the recorder) wants them, and the receiver's decoder queue is a
:class:`_TapQueue` that hands those frames over instead of decoding them.
``_handle_rtp_packet`` is wrapped to read the raw RTP (SSRC, audio level), and
:func:`receive_directly` hands SRTP datagrams from the socket straight to the DTLS
transport; once aiortc has seen a stream, its packets go to the tap's fast path
(``ReceiverTap._fast``), which does aiortc's per-packet receive work with aiortc's own
objects but without its parsing and coroutine layers. libsrtp is called through
pylibsrtp's binding with one shared buffer (:func:`srtp_call`). Send side (per
:class:`~aiortc.RTCRtpSender`): a :class:`ForwardingTrack` rewrites each packet's header
for its subscriber and sends it at once, the sender's "encoder" is a :class:`Packer` that
refuses to encode, a subscriber's PLI/FIR goes to a callback and REMB reaches a callback.
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
from typing import Any, NamedTuple

import aioice.ice
import av
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTP_HISTORY_SIZE,
    HeaderExtensionsMap,
    RtcpByePacket,
    RtcpPsfbPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    RtpPacket,
    is_rtcp,
    pack_remb_fci,
    wrap_rtx,
)
from aiortc.utils import random32, uint16_add
from pylibsrtp import Error as SrtpError
from pylibsrtp import Session as SrtpSession
from pylibsrtp._binding import ffi as _srtp_ffi
from pylibsrtp._binding import lib as _srtp_lib

from .rtp.codecs import is_keyframe, payload_starts_keyframe
from .rtp.history import PacketHistory
from .rtp.loss import LossTracker
from .rtp.seqmap import SeqMap

logger = logging.getLogger(__name__)

# How many video encodes a forwarding sender attempted: must stay 0 (see Packer.encode).
FORWARDING_ENCODES = 0
_UNPACK_SEQ_TS = struct.Struct("!HL").unpack_from
_UNPACK_EXT = struct.Struct("!HH").unpack_from


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


class _JitterTap:
    """Stands in for a receiver's jitter buffer: packets go on at once, frames on demand.

    aiortc calls ``add`` with every media packet, after unwrapping retransmissions and
    depayloading (``packet._data``). The packet goes to the :class:`ReceiverTap` (the
    forwarding path); the real buffer reassembles frames only while ``frames_wanted()``,
    and starts afresh when they are wanted again.
    """

    def __init__(self, tap: ReceiverTap, buffer: JitterBuffer) -> None:
        self.tap = tap
        self.buffer = buffer
        self.feeding = False

    @property
    def capacity(self) -> int:
        return self.buffer.capacity

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        tap = self.tap
        try:
            tap._packet(packet)
        except Exception:  # a bug here must not kill the receiver's RTP handling
            logger.exception("forwarding callback failed")
        if tap.frames_wanted():
            if not self.feeding:
                _clear_jitter_buffer(self.buffer)
                self.feeding = True
            return self.buffer.add(packet)
        self.feeding = False
        return False, None


class ReceiverTap:
    """The encoded output of one :class:`~aiortc.RTCRtpReceiver`, without decoding.

    Install it in the peer connection's ``track`` event handler (synchronously), before
    aiortc starts the receiver. ``on_packet(packet, starts_keyframe)`` gets every media
    packet as it arrives (retransmissions unwrapped; ``starts_keyframe`` is True for the
    first packet of a video keyframe and for every audio packet). ``on_frame`` gets every
    reassembled :class:`EncodedFrame` while ``frames_wanted()``; ``on_picture_loss`` is
    called when frames were lost for good (a jitter-buffer stall skipped, or aiortc's own
    jitter buffer overflowed), so the caller should drop to the next keyframe and ask for
    one. ``request_keyframe()`` sends a PLI now, unthrottled.
    """

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        kind: str,
        on_frame: Callable[[EncodedFrame], None],
        on_picture_loss: Callable[[], None],
        jitter_timeout: float,
        on_packet: Callable[[RtpPacket, bool], None] | None = None,
        frames_wanted: Callable[[], bool] | None = None,
    ) -> None:
        self.receiver = receiver
        self.kind = kind
        self.ssrc: int | None = None
        self.audio_level: tuple[bool, int] | None = None  # (voice activity, -dBov 0..127)
        self.audio_level_time = 0.0
        self.stalls = 0
        self.frames_wanted = frames_wanted or (lambda: True)
        self._on_frame = on_frame
        self._on_picture_loss = on_picture_loss
        self._on_packet = on_packet
        self._jitter_timeout = jitter_timeout
        self._pending_since: float | None = None
        self._released = False
        self._handle_rtp = receiver._handle_rtp_packet
        self._send_pli = receiver._send_rtcp_pli
        self._rtx_types: set[int] | None = None
        self._codec_names: dict[int, str] = {}
        self.losses = LossTracker()
        self._last_timestamp: int | None = None  # of the newest packet
        # The publisher's last sender report for this stream: (NTP seconds, RTP timestamp).
        self.sender_report: tuple[float, int] | None = None
        self._handle_rtcp = receiver._handle_rtcp_packet
        receiver._RTCRtpReceiver__decoder_queue = _TapQueue(self._frame)  # type: ignore[attr-defined]
        self._jitter: _JitterTap | None = None
        # The fast path (_fast), set up by _use_fast_path once aiortc has seen the stream.
        self._fast_ssrc: int | None = None
        self._fast_routes: dict[int, Callable[[bytes, int], bool]] = {}
        self._extension_ids: Any = None
        self._stats: Any = None
        self._nack: Any = None
        self._ssrc_table: dict[int, Any] = {}
        self._media_types: set[int] = set()
        if on_packet is not None:
            buffer = receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
            self._jitter = _JitterTap(self, buffer)
            receiver._RTCRtpReceiver__jitter_buffer = self._jitter  # type: ignore[attr-defined]
        receiver._handle_rtp_packet = self._rtp  # type: ignore[method-assign]
        receiver._handle_rtcp_packet = self._rtcp  # type: ignore[method-assign]
        # aiortc sends a PLI itself when its jitter buffer overflows or a packet is far
        # out of order: frames were dropped, so forwarding must wait for a keyframe too.
        receiver._send_rtcp_pli = self._aiortc_pli  # type: ignore[method-assign]

    def _packet(self, packet: RtpPacket) -> None:
        """A media packet, as it arrived: note gaps, then pass it on."""
        assert self._on_packet is not None
        newest = self.losses.add(packet.sequence_number)
        if self.kind == "audio":
            self._on_packet(packet, True)
            return
        # A keyframe starts at its first packet, and only if nothing of it came before
        # (a late first packet would start a subscriber on a frame it has lost the rest of).
        start = False
        if newest and packet.timestamp != self._last_timestamp:
            codec = self._codec_names.get(packet.payload_type)
            if codec is None:
                codecs = self.receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
                codec = self._codec_names[packet.payload_type] = codecs[packet.payload_type].name
            start = payload_starts_keyframe(codec, packet.payload)
        if newest:
            self._last_timestamp = packet.timestamp
        self._on_packet(packet, start)

    def _fast(self, plain: bytes, arrival_ms: int) -> bool:
        """aiortc's receive work for one unprotected media packet of this stream, without
        its layers: header fields and extensions read in place, then the REMB estimator,
        the RTCP statistics and the NACK generator (aiortc's own objects, so both paths
        share their state) and on to forwarding. Returns False, having changed nothing, for
        what aiortc's full path must take: a disabled receiver, frames wanted (the jitter
        buffer), an SSRC routed elsewhere, another payload type (RTX), padding, CSRCs,
        two-byte or malformed extensions. Unlike aiortc's path, a payload the codec's
        depayloader refuses is still forwarded: the subscriber's decoder judges it.
        aiortc's list of active sources is not updated (nothing reads it; aiortc uses it
        only for ``getSynchronizationSources``).
        """
        receiver = self.receiver
        if len(plain) < 12 or plain[0] & 0x2F:  # padding or CSRCs
            return False
        if self._ssrc_table.get(self._fast_ssrc) is not receiver:
            self._leave_fast_path()  # aiortc routes this SSRC elsewhere now
            return False
        if not receiver._enabled or self.frames_wanted():
            return False
        b0 = plain[0]
        b1 = plain[1]
        payload_type = b1 & 0x7F
        if payload_type not in self._media_types:
            return False
        sequence_number, timestamp = _UNPACK_SEQ_TS(plain, 2)
        pos = 12
        abs_send_time = level = None
        if b0 & 0x10:
            if len(plain) < 16:
                return False
            profile, words = _UNPACK_EXT(plain, 12)
            end = 16 + 4 * words
            if profile != 0xBEDE or end > len(plain):
                return False
            ids = self._extension_ids  # aiortc updates it in place on renegotiation
            pos = 16
            while pos < end:  # RFC 8285 one-byte elements
                first = plain[pos]
                pos += 1
                if first == 0:
                    continue
                ext_id, size = first >> 4, (first & 0x0F) + 1
                if pos + size > end:
                    return False  # truncated: aiortc's parser refuses it
                if ext_id == ids.abs_send_time:
                    if size != 3:
                        return False
                    abs_send_time = int.from_bytes(plain[pos : pos + 3])
                elif ext_id == ids.audio_level:
                    if size != 1:
                        return False
                    level = plain[pos]
                pos += size
            pos = end
        ssrc = self._fast_ssrc
        packet = RtpPacket(
            payload_type=payload_type,
            marker=b1 >> 7,
            sequence_number=sequence_number,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=plain[pos:],
        )
        if level is not None:
            self.audio_level = (level & 0x80 == 0x80, level & 0x7F)
            self.audio_level_time = time.monotonic()
        estimator = receiver._RTCRtpReceiver__remote_bitrate_estimator  # type: ignore[attr-defined]
        if estimator is not None and abs_send_time is not None:
            remb = estimator.add(
                abs_send_time=abs_send_time,
                arrival_time_ms=arrival_ms,
                payload_size=len(plain) - pos,
                ssrc=ssrc,
            )
            rtcp_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
            if remb is not None and rtcp_ssrc is not None:
                feedback = RtcpPsfbPacket(
                    fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(*remb)
                )
                _drive(receiver._send_rtcp(feedback))
        self._stats.add(packet)
        nack = self._nack
        if nack is not None and nack.add(packet):
            _drive(receiver._send_rtcp_nack(ssrc, sorted(nack.missing)))
        if self._jitter is not None:
            self._jitter.feeding = False  # the next frames wanted start afresh
        self._pending_since = None
        try:
            self._packet(packet)
        except Exception:  # a bug here must not kill the receiver's RTP handling
            logger.exception("forwarding callback failed")
        return True

    def _use_fast_path(self, ssrc: int) -> None:
        """Routes this stream's packets to :meth:`_fast` once aiortc has seen one (its
        statistics for the stream exist)."""
        receiver = self.receiver
        stats = receiver._RTCRtpReceiver__remote_streams.get(ssrc)  # type: ignore[attr-defined]
        dtls = receiver.transport
        if stats is None or self._on_packet is None or dtls is None:
            return
        table: dict[int, Callable[[bytes, int], bool]] = dtls.__dict__.setdefault("_sfu_fast", {})
        self._leave_fast_path()
        self._extension_ids = dtls._rtp_header_extensions_map._HeaderExtensionsMap__ids
        self._stats = stats
        self._nack = receiver._RTCRtpReceiver__nack_generator  # type: ignore[attr-defined]
        self._ssrc_table = dtls._rtp_router.ssrc_table
        codecs = receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
        self._media_types = {pt for pt, c in codecs.items() if c.name.lower() != "rtx"}
        self._fast_ssrc = ssrc
        self._fast_routes = table
        table[ssrc] = self._fast

    def _leave_fast_path(self) -> None:
        if self._fast_ssrc is not None:
            self._fast_routes.pop(self._fast_ssrc, None)
        self._fast_ssrc = None

    @property
    def lost(self) -> int:
        """Media packets lost for good (not even retransmitted in time)."""
        return self.losses.lost

    def expire_losses(self) -> list[int]:
        """Forgets packets missing for longer than the jitter timeout; returns their numbers.

        The publisher did not retransmit them in time (NACK/RTX): they are lost for good.
        """
        return self.losses.expire(self._jitter_timeout)

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
        if self.ssrc != self._fast_ssrc and self.ssrc is not None:
            self._use_fast_path(self.ssrc)
        # Frames are reassembled for this packet (the jitter tap asked frames_wanted()).
        feeding = self._jitter is None or self._jitter.feeding
        if self.kind != "video" or not feeding:
            self._pending_since = None
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
    buffer = receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
    _clear_jitter_buffer(buffer.buffer if isinstance(buffer, _JitterTap) else buffer)


def _clear_jitter_buffer(buffer: JitterBuffer) -> None:
    buffer._packets = [None] * buffer.capacity
    buffer._origin = None


# --- send side -------------------------------------------------------------------------


class Packer:
    """A forwarding sender's 'encoder': it never encodes, it only takes the REMB.

    It is installed as the sender's encoder before the sender starts, so aiortc never
    creates a real one; :meth:`encode` exists only to count (and refuse) any attempt.
    Setting ``target_bitrate`` (aiortc does on a subscriber's REMB) calls ``on_remb``.
    """

    def __init__(self, on_remb: Callable[[int], None]) -> None:
        self._on_remb = on_remb
        self._bitrate = 0

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        global FORWARDING_ENCODES
        FORWARDING_ENCODES += 1
        raise RuntimeError("a forwarding sender must not encode")

    def pack(self, packet: Any) -> tuple[list[bytes], int]:
        global FORWARDING_ENCODES
        FORWARDING_ENCODES += 1
        raise RuntimeError("a forwarding sender forwards RTP packets; it does not packetize")

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
    track: ForwardingTrack,
    rtcp_clock: RtcpClock | None = None,
) -> None:
    """Makes a sender forward ``track``'s packets: packer, PLI/FIR routing, msid, RTP loop,
    and (with ``rtcp_clock``) RTCP sender reports when the clock ticks.

    Call it before the sender starts (before the negotiation that activates it).
    """
    sender._RTCRtpSender__encoder = packer  # type: ignore[attr-defined]
    sender._send_keyframe = on_keyframe_request  # type: ignore[method-assign]
    # aiortc gives every sender of a connection the same stream id; browsers group a
    # participant's camera and microphone by it.
    sender._stream_id = stream_id
    track.sender = sender
    sender._run_rtp = track.run  # type: ignore[method-assign]
    sender._retransmit = track.retransmit  # type: ignore[method-assign]
    if rtcp_clock is not None:
        sender._run_rtcp = lambda: _run_sender_rtcp(sender, rtcp_clock)  # type: ignore[method-assign]


class RtcpClock:
    """When a room's forwarding senders send their RTCP sender reports: all at once, when
    the router's periodic work calls :meth:`tick` (about once a second).

    aiortc's own loop sleeps 0.5-1.5 s per sender, so each subscriber's sender woke the
    server about once a second on its own; a wake-up from idle costs more CPU here than
    the report itself. (RFC 3550 randomises intervals against synchronised senders
    sharing one session; these reports go over separate unicast connections.)
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def tick(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self) -> None:
        await self._event.wait()


async def _run_sender_rtcp(sender: RTCRtpSender, clock: RtcpClock) -> None:
    """aiortc 1.16's ``RTCRtpSender._run_rtcp`` (an SR and SDES per interval, a BYE at
    the end), paced by ``clock`` instead of a timer of its own."""
    sender._RTCRtpSender__rtcp_started.set()  # type: ignore[attr-defined]
    ssrc = sender._ssrc
    try:
        while True:
            await clock.wait()
            ntp_timestamp: int = sender._RTCRtpSender__ntp_timestamp  # type: ignore[attr-defined]
            packets: list[Any] = [
                RtcpSrPacket(
                    ssrc=ssrc,
                    sender_info=RtcpSenderInfo(
                        ntp_timestamp=ntp_timestamp,
                        rtp_timestamp=sender._RTCRtpSender__rtp_timestamp,  # type: ignore[attr-defined]
                        packet_count=sender._RTCRtpSender__packet_count & 0xFFFFFFFF,  # type: ignore[attr-defined]
                        octet_count=sender._RTCRtpSender__octet_count & 0xFFFFFFFF,  # type: ignore[attr-defined]
                    ),
                )
            ]
            sender._RTCRtpSender__lsr = (ntp_timestamp >> 16) & 0xFFFFFFFF  # type: ignore[attr-defined]
            sender._RTCRtpSender__lsr_time = time.time()  # type: ignore[attr-defined]
            cname: str | None = sender._RTCRtpSender__cname  # type: ignore[attr-defined]
            if cname is not None:
                packets.append(
                    RtcpSdesPacket(
                        chunks=[RtcpSourceInfo(ssrc=ssrc, items=[(1, cname.encode("utf8"))])]
                    )
                )
            await sender._send_rtcp(packets)
    except asyncio.CancelledError:
        pass
    try:
        await sender._send_rtcp([RtcpByePacket(sources=[ssrc])])
    finally:
        sender._RTCRtpSender__rtcp_exited.set()  # type: ignore[attr-defined]  # stop() waits


# Seconds from the NTP epoch (1900) to the Unix epoch (1970).
_NTP_UNIX_OFFSET = 2208988800
# Bytes a subscriber's UDP socket may hold back (the kernel refused them) before the
# subscriber counts as too slow and drops to the next keyframe.
_SOCKET_BACKLOG_LIMIT = 512 * 1024
_PACK_HEADER = struct.Struct("!BBHLL").pack


class Arrival(NamedTuple):
    """When a producer's packet arrived, in the forms each subscriber's copy needs (made
    once per packet, not once per subscriber)."""

    time: float  # Unix time
    abs_send_time: int  # NTP time as 6.18 fixed point, 24 bits (aiortc: ntp >> 14)
    abs_send_time_bytes: bytes
    ntp: int  # 64-bit NTP time, for the subscribers' RTCP sender reports

    @classmethod
    def now(cls) -> Arrival:
        now = time.time()
        abs_time = int((now + _NTP_UNIX_OFFSET) * 262144) & 0xFFFFFF
        return cls(now, abs_time, abs_time.to_bytes(3), _ntp_time(now))


def _ntp_time(unix_time: float) -> int:
    """64-bit NTP time (32.32 fixed point), as aiortc's datetime-based clock gives it."""
    seconds = int(unix_time)
    return (seconds + _NTP_UNIX_OFFSET) << 32 | int((unix_time - seconds) * (1 << 32))


_DTLS_CONNECTED = DtlsState.CONNECTED
# One buffer for every SRTP call made here (all on the event loop's thread): pylibsrtp's
# own calls allocate a length per call and use a buffer per session, more memory touched
# per packet. Limits as pylibsrtp's: a 1500-byte buffer, room left for the longest trailer.
_SRTP_BUFFER_SIZE = 1500
_SRTP_MAX_TRAILER = 16 + 128  # pylibsrtp's SRTP_MAX_TRAILER_LEN
_SRTP_BUFFER = _srtp_ffi.new("char[]", _SRTP_BUFFER_SIZE)
_SRTP_VIEW = _srtp_ffi.buffer(_SRTP_BUFFER)
_SRTP_LENGTH = _srtp_ffi.new("int *")


def srtp_call(session: Any, operation: str) -> Callable[[bytes], bytes]:
    """``session.protect`` or ``session.unprotect`` (SRTP, not SRTCP): for a pylibsrtp
    Session, libsrtp called directly with the shared buffer; other objects' own method."""
    if not isinstance(session, SrtpSession):
        return getattr(session, operation)  # e.g. a test's stand-in
    protect = operation == "protect"
    function = _srtp_lib.srtp_protect if protect else _srtp_lib.srtp_unprotect
    largest = _SRTP_BUFFER_SIZE - (_SRTP_MAX_TRAILER if protect else 0)
    context = session._srtp[0]
    view, buffer, length = _SRTP_VIEW, _SRTP_BUFFER, _SRTP_LENGTH

    def call(data: bytes, session: SrtpSession = session) -> bytes:  # keeps session alive
        size = len(data)
        if size > largest:
            raise ValueError("packet is too long")
        view[0:size] = data
        length[0] = size
        result = function(context, buffer, length)
        if result:
            raise SrtpError(f"libsrtp error {result}")
        return view[0 : length[0]]

    return call


class ForwardingTrack(MediaStreamTrack):
    """A subscriber's copy of one producer (a consumer, in mediasoup's words).

    It takes the producer's RTP packets as they arrive (:meth:`forward`) and sends them on
    its subscriber's sender with the header rewritten: the sender's SSRC and payload type,
    its own contiguous sequence numbers and timestamp origin, the mid and abs-send-time
    extensions. Payloads (VP8 descriptors included) are the publisher's, shared by every
    subscriber: no depacketizing, reassembly or repacketizing on the way.

    Video starts at a keyframe. Packets go out synchronously (SRTP, then the ICE pair's
    UDP socket); only before the sender runs, or when its transport cannot take packets
    at once (a wrapped, emulated link), they wait in a backlog bounded by ``max_frames``.
    When the backlog or the socket's buffer is full, the subscriber drops to the next
    keyframe and ``request_keyframe`` is called. Sequence numbers stay contiguous across
    such skips, and NACKed packets are retransmitted (as RTX if negotiated) from a
    history, like aiortc's own sender.
    """

    def __init__(
        self,
        kind: str,
        track_id: str,
        max_frames: int,
        request_keyframe: Callable[[], None],
    ) -> None:
        super().__init__()
        self.kind = kind
        self._id = track_id
        self.max_frames = max_frames
        self.sender: RTCRtpSender | None = None
        self.ready = False  # the sender runs: header fields known, transport connected
        self.forwarded = 0  # frames (audio: packets) sent
        self.dropped = 0
        self.overflows = 0
        self.max_depth = 0
        self.waiting_since = time.monotonic()
        self._waiting = True  # for a keyframe (audio: for any packet)
        self._request_keyframe = request_keyframe
        self._audio = kind == "audio"
        # seq % RTP_HISTORY_SIZE -> the packet as sent, before SRTP (for NACKs)
        self.history = PacketHistory(RTP_HISTORY_SIZE)
        self.payload_type = 0
        self._ssrc = 0
        self._first_byte = 0x80
        self._head = self._tail = b""
        self._with_time = False
        self.numbering = SeqMap(random_sequence_number(), random32())
        # Packets go out in forward() itself: ready, nothing in the backlog, transport
        # not wrapped (LinkEmulator). Decided by run(), cleared by stop().
        self._direct = False
        self._protect: Callable[[bytes], bytes] | None = None
        self._dtls: Any = None
        self._ice: Any = None
        self._pair: Any = None  # the ICE pair in use, its asyncio transport and address
        self._udp: Any = None
        self._raw = False
        self._remote: tuple[str, int] | None = None
        self._octets = 0
        self._packets = 0
        # (packet, restart, arrival) waiting for the sender; complete frames counted.
        self._backlog: deque[tuple[RtpPacket, bool, Arrival]] = deque()
        self._backlog_frames = 0
        self._sending_ts: int | None = None  # a frame partly sent from the backlog
        self._wakeup = asyncio.Event()

    @property
    def waiting_keyframe(self) -> bool:
        return self._waiting and not self._audio

    @property
    def depth(self) -> int:
        """Frames waiting in the backlog. (Not ``__len__``: aiortc tests tracks for truth.)"""
        return self._backlog_frames

    # --- the producer's side ------------------------------------------------------------

    def forward(self, packet: RtpPacket, starts_keyframe: bool, arrival: Arrival) -> None:
        """Sends (or queues) one of the producer's packets; never blocks, never raises."""
        if self._direct and not self._waiting:
            mapped = self.numbering.in_order(packet.sequence_number, packet.timestamp)
            if mapped is not None:  # the next packet in order, the common case
                self._send_now(self._packed(packet, mapped[0], mapped[1], arrival))
                return
        if self._waiting:
            if not starts_keyframe or self.readyState != "live":
                if packet.marker:
                    self.dropped += 1
                return
            self._waiting = False
            restart = True
        else:
            restart = False
        if self._direct:
            data = self._rewrite(packet, restart, arrival)
            if data is not None:
                self._send_now(data)
            return
        if self.readyState != "live":
            return
        self._backlog.append((packet, restart, arrival))
        if packet.marker or self._audio:
            self._backlog_frames += 1
            self.max_depth = max(self.max_depth, self._backlog_frames)
            if self._backlog_frames >= self.max_frames:
                self._overflow()
        self._wakeup.set()

    def skip_loss(self, lost: list[int]) -> None:
        """The producer's packets ``lost`` (its numbers) never came: fill this subscriber's
        holes with padding and wait for a keyframe.

        Padding packets take every number still missing in the subscriber's stream since
        its last (re)start (up to the retransmission history), so a receiver that waits
        for every packet (aiortc's jitter buffer) moves on instead of stalling, also for
        losses that would expire later. A subscriber whose stream started after the loss
        is not affected.
        """
        if self._audio or self._waiting or not self.ready:
            return
        numbering = self.numbering
        if not numbering.missed(lost):
            return
        if self._direct:
            seq = numbering.first_of_segment(RTP_HISTORY_SIZE)
            timestamp = numbering.last_timestamp
            while seq != numbering.next_seq:
                sent = self.history.timestamp(seq)
                if sent is not None:
                    timestamp = sent  # a hole takes the frame before it
                else:
                    header = _PACK_HEADER(0xA0, self.payload_type, seq, timestamp, self._ssrc)
                    self._send_now(header + b"\x01")  # padding only (RFC 3550 5.1)
                seq = (seq + 1) & 0xFFFF
        self._waiting = True
        self.waiting_since = time.monotonic()

    def _overflow(self) -> None:
        """The subscriber fell behind: drop all but a frame half sent, wait for a keyframe."""
        self.overflows += 1
        kept = deque(e for e in self._backlog if e[0].timestamp == self._sending_ts)
        dropped = self._backlog_frames - sum(1 for e in kept if e[0].marker or self._audio)
        self.dropped += dropped
        self._backlog = kept
        self._backlog_frames -= dropped
        self._waiting = True
        self.waiting_since = time.monotonic()
        if not self._audio:
            self._request_keyframe()

    # --- the subscriber's side ------------------------------------------------------------

    def _rewrite(self, packet: RtpPacket, restart: bool, arrival: Arrival) -> bytes | None:
        """The packet as this subscriber's sender sends it, or None if it came too late."""
        numbering = self.numbering
        if restart:
            seq, timestamp = numbering.restart(packet.sequence_number, packet.timestamp)
        else:
            mapped = numbering.map(packet.sequence_number, packet.timestamp)
            if mapped is None:
                return None  # from before the last skip: the subscriber never expects it
            seq, timestamp = mapped
        return self._packed(packet, seq, timestamp, arrival)

    def _packed(self, packet: RtpPacket, seq: int, timestamp: int, arrival: Arrival) -> bytes:
        """The packet with this subscriber's header and extensions, kept for NACKs and
        counted (per frame: what aiortc's RTCP sender reports read)."""
        marker = packet.marker
        payload = packet.payload
        header = _PACK_HEADER(
            self._first_byte, marker << 7 | self.payload_type, seq, timestamp, self._ssrc
        )
        if self._with_time:
            data = header + self._head + arrival.abs_send_time_bytes + self._tail + payload
        else:
            data = header + self._head + payload
        self.history[seq % RTP_HISTORY_SIZE] = data
        self._octets += len(payload)
        self._packets += 1
        if not (marker or self._audio):
            return data
        self.forwarded += 1
        sender = self.sender
        sender._RTCRtpSender__ntp_timestamp = arrival.ntp  # type: ignore[union-attr]
        sender._RTCRtpSender__rtp_timestamp = timestamp  # type: ignore[union-attr]
        sender._RTCRtpSender__octet_count = self._octets  # type: ignore[union-attr]
        sender._RTCRtpSender__packet_count = self._packets  # type: ignore[union-attr]
        return data

    def _send_now(self, data: bytes) -> None:
        """SRTP-protects a packet and writes it to the ICE pair's socket (aiortc's
        ``RTCDtlsTransport._send_rtp`` down to aioice's ``send_data`` and asyncio's
        ``sendto``, without the coroutine layers)."""
        dtls = self._dtls
        try:
            if dtls._state is not _DTLS_CONNECTED:
                return
            pair = self._ice._nominated.get(1)
            if pair is not self._pair or pair is None:
                if pair is None:
                    return
                self._pair = pair
                self._udp = pair.protocol.transport
                self._remote = pair.remote_addr
                # asyncio's UDP transport; a relayed pair has aioice's TurnTransport.
                self._raw = hasattr(self._udp, "_sock") and hasattr(self._udp, "_buffer")
                self._protect = srtp_call(dtls._tx_srtp, "protect")
            udp = self._udp
            data = self._protect(data)  # type: ignore[misc]
            if not self._raw:
                udp.sendto(data, self._remote)
            elif udp._buffer:  # the kernel refused earlier packets: asyncio holds them
                if udp.get_write_buffer_size() > _SOCKET_BACKLOG_LIMIT:
                    if not self._waiting:
                        self._overflow()
                    return
                udp.sendto(data, self._remote)
            else:
                try:
                    udp._sock.sendto(data, self._remote)
                except (BlockingIOError, InterruptedError):
                    udp.sendto(data, self._remote)  # buffers it and waits for the socket
            dtls._RTCDtlsTransport__tx_bytes += len(data)
            dtls._RTCDtlsTransport__tx_packets += 1
        except Exception:  # a closing transport: the sender's loop ends on its own
            logger.debug("forwarding send failed", exc_info=True)

    async def run(self, codec: RTCRtpCodecParameters) -> None:
        """Replaces the sender's ``_run_rtp``: aiortc starts it once DTLS is connected.

        It fixes the header fields, then sends what waits in the backlog.
        """
        sender = self.sender
        assert sender is not None
        sender._RTCRtpSender__rtp_started.set()  # type: ignore[attr-defined]
        self.payload_type = codec.payloadType
        self._ssrc = sender._ssrc
        self._head, self._tail, self._with_time = _extension_block(sender)
        # First header byte: version 2, extension bit if there is an extension block.
        self._first_byte = 0x90 if self._head else 0x80
        self._dtls = sender.transport
        self._ice = self._dtls.transport._connection
        self.ready = True
        if self._waiting and not self._audio:
            self._request_keyframe()
        try:
            while self.readyState == "live":
                while self._backlog:
                    packet, restart, arrival = self._backlog.popleft()
                    if packet.marker or self._audio:
                        self._backlog_frames -= 1
                    self._sending_ts = None if packet.marker else packet.timestamp
                    data = self._rewrite(packet, restart, arrival)
                    if data is None:
                        continue
                    if "_send_rtp" in self._dtls.__dict__:
                        await self._dtls._send_rtp(data)
                    else:
                        self._send_now(data)
                self._sending_ts = None
                # From now on forward() sends, unless a test's LinkEmulator wraps the
                # transport (it sets _direct to False again when it attaches).
                self._direct = self.ready and "_send_rtp" not in self._dtls.__dict__
                self._wakeup.clear()
                await self._wakeup.wait()
        except (asyncio.CancelledError, ConnectionError):
            pass
        except Exception:
            # Like aiortc: the loop must end cleanly or RTCRtpSender.stop() hangs.
            logger.warning("forwarding send loop failed", exc_info=True)
        self.ready = self._direct = False
        track = sender._RTCRtpSender__track  # type: ignore[attr-defined]
        if track:
            track.stop()
            sender._RTCRtpSender__track = None  # type: ignore[attr-defined]
        sender._RTCRtpSender__encoder = None  # type: ignore[attr-defined]
        sender._RTCRtpSender__rtp_exited.set()  # type: ignore[attr-defined]

    async def retransmit(self, sequence_number: int) -> None:
        """Resends a packet a subscriber NACKed (as RTX if negotiated), like aiortc."""
        data = self.history.find(sequence_number)
        sender = self.sender
        if data is None or sender is None:
            return
        rtx_payload_type = sender._RTCRtpSender__rtx_payload_type  # type: ignore[attr-defined]
        if rtx_payload_type is not None:
            ext_map = sender._RTCRtpSender__rtp_header_extensions_map  # type: ignore[attr-defined]
            rtx_seq = sender._RTCRtpSender__rtx_sequence_number  # type: ignore[attr-defined]
            packet = wrap_rtx(
                RtpPacket.parse(data, ext_map), rtx_payload_type, rtx_seq, sender._rtx_ssrc
            )
            sender._RTCRtpSender__rtx_sequence_number = uint16_add(rtx_seq, 1)  # type: ignore[attr-defined]
            data = packet.serialize(ext_map)
        await sender.transport._send_rtp(data)

    async def recv(self) -> Any:  # type: ignore[override]
        # Nothing pulls from a forwarding track (its sender's loop is replaced).
        while self.readyState == "live":
            self._wakeup.clear()
            await self._wakeup.wait()
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self.ready = self._direct = False  # nothing more goes out, not even directly
        self._backlog.clear()
        self._backlog_frames = 0
        self._wakeup.set()  # the sender's loop ends


def _extension_block(sender: RTCRtpSender) -> tuple[bytes, bytes, bool]:
    """A sender's header extension block (aiortc's own encoding of mid and
    abs-send-time), split around the 3 abs-send-time bytes that change per packet."""
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


def sender_running(sender: RTCRtpSender) -> bool:
    """Whether a sender's RTP loop runs (aiortc starts it once DTLS is connected)."""
    task = getattr(sender, "_RTCRtpSender__rtp_task", None)
    return task is not None and not task.done()


def sender_packer(sender: RTCRtpSender) -> Any:
    """The encoder object a sender uses now (a :class:`Packer` if forwarding is intact)."""
    return sender._RTCRtpSender__encoder  # type: ignore[attr-defined]


class PeerActivity:
    """When a peer connection last received RTCP (or RTP) from its remote peer.

    aiortc has no ``disconnected`` state and reports ``failed`` only after ICE consent
    checks fail (about 30 s); a peer that sends media sends RTCP about every second. Read
    from the DTLS transports' receive counters when asked, so nothing runs per packet.
    """

    def __init__(self) -> None:
        self._last = time.monotonic()
        self._transports: list[Any] = []
        self._seen = -1

    def attach(self, pc: Any) -> None:
        """Watches the DTLS transports of ``pc`` (again after each negotiation: idempotent)."""
        for transceiver in pc.getTransceivers():
            transport = transceiver.receiver.transport
            if not any(t is transport for t in self._transports):
                self._transports.append(transport)

    @property
    def last(self) -> float:
        received = sum(t._RTCDtlsTransport__rx_packets for t in self._transports)
        if received != self._seen:
            self._seen = received
            self._last = time.monotonic()
        return self._last

    @last.setter
    def last(self, value: float) -> None:
        self._seen = sum(t._RTCDtlsTransport__rx_packets for t in self._transports)
        self._last = value


def receive_directly(pc: Any) -> None:
    """Hands a peer connection's SRTP and SRTCP datagrams to its DTLS transport in the
    socket's own callback (idempotent; call after each negotiation).

    aiortc's path for each datagram is: aioice tries to parse it as STUN (an exception for
    every media packet), queues it, wakes the DTLS transport's reading task, which awaits
    four coroutine layers before ``_recv_next`` unprotects it. Here the nominated pair's
    protocol unprotects and dispatches at once; DTLS, STUN and anything before the
    transport is connected still take aiortc's path.
    """
    for transceiver in pc.getTransceivers():
        for dtls in (transceiver.receiver.transport, transceiver.sender.transport):
            if dtls is None or getattr(dtls, "_sfu_direct", False):
                continue
            dtls._sfu_direct = True
            if dtls.state == "connected":
                _install_direct(dtls)
            else:

                def on_state(dtls: Any = dtls) -> None:
                    if dtls.state == "connected":
                        _install_direct(dtls)

                dtls.on("statechange", on_state)


def _install_direct(dtls: Any) -> None:
    pair = dtls.transport._connection._nominated.get(1)
    if pair is None or getattr(pair.protocol, "_sfu_direct", False):
        return
    protocol = pair.protocol
    original = protocol.datagram_received
    rx_srtp = dtls._rx_srtp
    unprotect = srtp_call(rx_srtp, "unprotect")
    # SSRC -> a ReceiverTap's fast path (ReceiverTap._use_fast_path).
    fast_routes: dict[int, Callable[[bytes, int], bool]] = dtls.__dict__.setdefault("_sfu_fast", {})

    def datagram_received(data: bytes, addr: tuple[Any, ...]) -> None:
        first = data[0] if data else 0
        if not 127 < first < 192 or dtls._state is not DtlsState.CONNECTED:
            original(data, addr)  # STUN, DTLS: aioice and aiortc as usual
            return
        dtls._RTCDtlsTransport__rx_bytes += len(data)
        dtls._RTCDtlsTransport__rx_packets += 1
        try:
            if is_rtcp(data):
                _drive(dtls._handle_rtcp_data(rx_srtp.unprotect_rtcp(data)))
                return
            plain = unprotect(data)
        except Exception:  # pylibsrtp.Error: replayed or damaged, as aiortc drops it
            return
        arrival_ms = int((time.time() + _NTP_UNIX_OFFSET) * 1000)  # aiortc's clock
        fast = fast_routes.get(int.from_bytes(plain[8:12])) if len(plain) >= 12 else None
        try:
            if fast is not None and fast(plain, arrival_ms):
                return
        except Exception:
            logger.warning("media packet handler failed", exc_info=True)
            return
        _drive(dtls._handle_rtp_data(plain, arrival_ms))

    protocol.datagram_received = datagram_received
    protocol._sfu_direct = True


def _drive(coro: Any) -> None:
    """Runs a coroutine now, on this stack; if it has to wait, a task finishes it.

    aiortc's packet handlers only await sends that complete at once, so they nearly
    always end here without a task (and its wake-up) per packet.
    """
    try:
        waiting = coro.send(None)
    except StopIteration:
        return
    except Exception:
        logger.warning("media packet handler failed", exc_info=True)
        return
    task = asyncio.ensure_future(_finish(coro, waiting))
    _finishing.add(task)
    task.add_done_callback(_finishing.discard)


_finishing: set[asyncio.Future[None]] = set()


async def _finish(coro: Any, waiting: Any) -> None:
    """Drives a coroutine :func:`_drive` started, as a task would."""
    try:
        while True:
            if waiting is None:  # a bare yield (asyncio.sleep(0))
                await asyncio.sleep(0)
            else:
                waiting._asyncio_future_blocking = False
                await asyncio.wait([waiting])
            # Resumed like a task resumes it: the awaited future's result or exception
            # surfaces inside the coroutine.
            try:
                waiting = coro.send(None)
            except StopIteration:
                return
    except asyncio.CancelledError:
        coro.close()
        raise
    except Exception:
        logger.warning("media packet handler failed", exc_info=True)


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
            track = transceiver.sender.track
            if isinstance(track, ForwardingTrack):
                track._direct = False  # its packets now go through the wrapped transport
            transport = transceiver.sender.transport
            if any(t is transport for t, _ in self._originals):
                continue  # bundled: one transport for several transceivers
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
