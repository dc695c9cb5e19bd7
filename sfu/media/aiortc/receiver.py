"""The receive side of a forwarding server in aiortc: a receiver's packets as they arrive,
without decoding (:class:`ReceiverTap`), its jitter buffer, PLI and REMB."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters
from aiortc.rtcrtpreceiver import NackGenerator
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RtcpPsfbPacket,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
)

from ..rtp.codecs import payload_starts_keyframe
from ..rtp.header import read_extensions, unpack_seq_ts
from ..rtp.loss import LossTracker
from .transport import drive

logger = logging.getLogger(__name__)


class _TapQueue:
    """Stands in for a receiver's decoder queue, so nothing is decoded.

    aiortc's decoder thread calls ``get()``, which waits for the ``None`` aiortc puts when
    the receiver stops, so the thread ends with the receiver. Frames never come: the jitter
    buffer that would release them is the :class:`_JitterTap`, which keeps none.
    """

    def __init__(self) -> None:
        self._stopped = threading.Event()

    def put(self, item: Any) -> None:
        if item is None:
            self._stopped.set()

    def get(self) -> None:
        self._stopped.wait()
        return None


class _JitterTap:
    """Stands in for a receiver's jitter buffer: every packet goes on at once, none is kept.

    aiortc calls ``add`` with every media packet its own path takes, after unwrapping
    retransmissions; the packet goes to the :class:`ReceiverTap` (forwarding, and frames
    for observers, which assemble them themselves: sfu/media/rtp/assembler.py).
    """

    def __init__(self, tap: ReceiverTap, buffer: JitterBuffer) -> None:
        self.tap = tap
        self.capacity = buffer.capacity

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        try:
            self.tap._packet(packet)
        except Exception:  # a bug here must not kill the receiver's RTP handling
            logger.exception("forwarding callback failed")
        return False, None


def unrouted(packet: RtpPacket, starts_keyframe: bool) -> None:
    """Where a tap's packets go while no producer takes them: nowhere."""


def unrouted_layer(layer: int, packet: RtpPacket, starts_keyframe: bool) -> None:
    """Where a simulcast tap's packets go while no producer takes them: nowhere."""


class _NackPerStream:
    """aiortc's NACK generator, one per SSRC: a simulcast receiver gets several streams,
    each with its own numbering, which one generator would take for one stream with huge
    gaps (NACKs for packets never lost). ``missing`` is that of the stream last added to,
    as aiortc reads it right after ``add``."""

    MAX_STREAMS = 16  # a publisher cannot make this grow without bound

    def __init__(self) -> None:
        self._streams: dict[int, NackGenerator] = {}
        self._last = NackGenerator()

    def add(self, packet: RtpPacket) -> bool:
        generator = self._streams.get(packet.ssrc)
        if generator is None:
            if len(self._streams) >= self.MAX_STREAMS:
                self._streams.clear()
            generator = self._streams[packet.ssrc] = NackGenerator()
        self._last = generator
        return generator.add(packet)

    @property
    def missing(self) -> set[int]:
        return self._last.missing


class ReceiverTap:
    """The encoded output of one :class:`~aiortc.RTCRtpReceiver`, without decoding.

    Install it in the peer connection's ``track`` event handler (synchronously), before
    aiortc starts the receiver. ``on_packet(packet, starts_keyframe)`` gets every media
    packet as it arrives (retransmissions unwrapped; ``starts_keyframe`` is True for the
    first packet of a video keyframe and for every audio packet); :meth:`route` changes
    where they go. Nothing is reassembled or decoded here. :meth:`expire_losses` names the
    packets missing for longer than ``jitter_timeout`` (lost for good);
    :meth:`request_keyframe` sends a PLI now, unthrottled.

    A simulcast stream (``rids``: its encodings lowest first, RFC 8853) arrives as one
    SSRC per encoding, each named by the RID header extension on its first packets (and
    its retransmissions' SSRC by the repaired-RID one): the tap learns which SSRC is which
    layer, keeps losses, keyframes, NACKs and sender reports per layer, and hands packets
    to :meth:`route_layers`' callback with their layer's index instead.
    """

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        kind: str,
        jitter_timeout: float,
        on_packet: Callable[[RtpPacket, bool], None] | None = None,
        rids: list[str] | None = None,
    ) -> None:
        self.receiver = receiver
        self.kind = kind
        self.ssrc: int | None = None
        self.rids = list(rids or [])
        self.layered = len(self.rids) > 1
        self.layer_ssrcs: list[int | None] = [None] * len(self.rids)
        self._layer_of: dict[int, int] = {}  # SSRC -> layer index
        self._layer_losses = [LossTracker() for _ in self.rids]
        self._layer_last_ts: list[int | None] = [None] * len(self.rids)
        self._on_layer: Callable[[int, RtpPacket, bool], None] = unrouted_layer
        self.audio_level: tuple[bool, int] | None = None  # (voice activity, -dBov 0..127)
        self.audio_level_time = 0.0
        self.stalls = 0  # times packets were given up as lost (subscribers skipped ahead)
        self._on_packet = on_packet or unrouted
        self._jitter_timeout = jitter_timeout
        self._handle_rtp = receiver._handle_rtp_packet
        self._send_pli = receiver._send_rtcp_pli
        self._rtx_types: set[int] | None = None
        self._codec_names: dict[int, str] = {}
        self.losses = LossTracker()
        self._last_timestamp: int | None = None  # of the newest packet
        # The publisher's last sender report per SSRC: (NTP seconds, RTP timestamp).
        self.sender_reports: dict[int, tuple[float, int]] = {}
        self._handle_rtcp = receiver._handle_rtcp_packet
        receiver._RTCRtpReceiver__decoder_queue = _TapQueue()  # type: ignore[attr-defined]
        # The fast path (_fast), set up by _use_fast_path once aiortc has seen a stream:
        # aiortc's statistics of each SSRC it serves.
        self._fast_stats: dict[int, Any] = {}
        self._fast_routes: dict[int, Callable[[bytes, int], bool]] = {}
        self._extension_ids: Any = None
        self._nack: Any = None
        self._ssrc_table: dict[int, Any] = {}
        self._media_types: set[int] = set()
        buffer = receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
        receiver._RTCRtpReceiver__jitter_buffer = _JitterTap(self, buffer)  # type: ignore[attr-defined]
        receiver._handle_rtp_packet = self._rtp  # type: ignore[method-assign]
        receiver._handle_rtcp_packet = self._rtcp  # type: ignore[method-assign]
        if self.layered:
            receiver._RTCRtpReceiver__nack_generator = _NackPerStream()  # type: ignore[attr-defined]

    @property
    def sender_report(self) -> tuple[float, int] | None:
        """The last sender report of the stream (of a simulcast stream: of the SSRC last
        seen on aiortc's path; :meth:`layer_sender_report` for one layer's)."""
        return self.sender_reports.get(self.ssrc) if self.ssrc is not None else None

    def layer_sender_report(self, layer: int) -> tuple[float, int] | None:
        ssrc = self.layer_ssrcs[layer] if layer < len(self.layer_ssrcs) else None
        return self.sender_reports.get(ssrc) if ssrc is not None else None

    def _learn_layer(self, packet: RtpPacket) -> None:
        """Which layer an SSRC carries, from the RID extension (its retransmissions' SSRC
        from the repaired-RID one, told to aiortc, which unwraps RTX by its own table)."""
        extensions = packet.extensions
        rid = extensions.rtp_stream_id
        if rid is not None and rid in self.rids and packet.ssrc not in self._layer_of:
            index = self.rids.index(rid)
            old = self.layer_ssrcs[index]
            if old is not None:  # the encoding restarted with a new SSRC
                self._layer_of.pop(old, None)
            self.layer_ssrcs[index] = packet.ssrc
            self._layer_of[packet.ssrc] = index
            self._layer_losses[index] = LossTracker()
            self._layer_last_ts[index] = None
        repaired = extensions.repaired_rtp_stream_id
        if repaired is not None and repaired in self.rids:
            media = self.layer_ssrcs[self.rids.index(repaired)]
            table = self.receiver._RTCRtpReceiver__rtx_ssrc  # type: ignore[attr-defined]
            if media is not None and table.get(packet.ssrc) != media and len(table) < 16:
                table[packet.ssrc] = media

    def _layer_packet(self, packet: RtpPacket) -> None:
        """A simulcast media packet: its layer's losses and keyframes, then on."""
        index = self._layer_of.get(packet.ssrc)
        if index is None:
            return  # an SSRC no RID has named yet: which layer it is is unknown
        newest = self._layer_losses[index].add(packet.sequence_number)
        if newest is None:
            return  # a duplicate: every consumer has it
        start = False
        if newest and packet.timestamp != self._layer_last_ts[index]:
            start = payload_starts_keyframe(self._codec_name(packet.payload_type), packet.payload)
            self._layer_last_ts[index] = packet.timestamp
        self._on_layer(index, packet, start)

    def _codec_name(self, payload_type: int) -> str:
        codec = self._codec_names.get(payload_type)
        if codec is None:
            codecs = self.receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
            codec = self._codec_names[payload_type] = codecs[payload_type].name
        return codec

    def _packet(self, packet: RtpPacket) -> None:
        """A media packet, as it arrived: note gaps, then pass it on."""
        if self.layered:
            self._layer_packet(packet)
            return
        newest = self.losses.add(packet.sequence_number)
        if newest is None:
            return  # a duplicate: every consumer has it
        if self.kind == "audio":
            self._on_packet(packet, True)
            return
        # A keyframe starts at its first packet, and only if nothing of it came before
        # (a late first packet would start a subscriber on a frame it has lost the rest of).
        start = False
        if newest and packet.timestamp != self._last_timestamp:
            start = payload_starts_keyframe(self._codec_name(packet.payload_type), packet.payload)
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
        ssrc = int.from_bytes(plain[8:12])
        stats = self._fast_stats.get(ssrc)
        if stats is None or self._ssrc_table.get(ssrc) is not receiver:
            self._leave_fast_path(ssrc)  # aiortc routes this SSRC elsewhere now
            return False
        if not receiver._enabled:
            return False
        b1 = plain[1]
        payload_type = b1 & 0x7F
        if payload_type not in self._media_types:
            return False
        sequence_number, timestamp = unpack_seq_ts(plain, 2)
        ids = self._extension_ids  # aiortc updates it in place on renegotiation
        read = read_extensions(plain, ids.abs_send_time, ids.audio_level)
        if read is None:
            return False  # aiortc's parser judges it
        pos, abs_send_time, level = read
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
        estimator = receiver._RTCRtpReceiver__remote_bitrate_estimator
        if estimator is not None and abs_send_time is not None:
            remb = estimator.add(
                abs_send_time=abs_send_time,
                arrival_time_ms=arrival_ms,
                payload_size=len(plain) - pos,
                ssrc=ssrc,
            )
            rtcp_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc
            if remb is not None and rtcp_ssrc is not None:
                feedback = RtcpPsfbPacket(
                    fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(*remb)
                )
                drive(receiver._send_rtcp(feedback))
        stats.add(packet)
        nack = self._nack
        if nack is not None and nack.add(packet):
            drive(receiver._send_rtcp_nack(ssrc, sorted(nack.missing)))
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
        if self.layered and ssrc not in self._layer_of:
            return  # its layer is not known yet: aiortc's path, which reads the RID
        table: dict[int, Callable[[bytes, int], bool]] = dtls.__dict__.setdefault("_sfu_fast", {})
        if not self.layered or len(self._fast_stats) >= 2 * len(self.rids):
            for old in list(self._fast_stats):  # one stream at a time (a new SSRC replaces)
                self._leave_fast_path(old)
        # Name-mangled in aiortc, so unknown to its type hints.
        ext_map = dtls._rtp_header_extensions_map
        self._extension_ids = ext_map._HeaderExtensionsMap__ids  # type: ignore[attr-defined]
        self._stats = stats
        self._nack = receiver._RTCRtpReceiver__nack_generator  # type: ignore[attr-defined]
        self._ssrc_table = dtls._rtp_router.ssrc_table
        codecs = receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
        self._media_types = {pt for pt, c in codecs.items() if c.name.lower() != "rtx"}
        self._fast_stats[ssrc] = stats
        self._fast_routes = table
        table[ssrc] = self._fast

    def _leave_fast_path(self, ssrc: int) -> None:
        if self._fast_stats.pop(ssrc, None) is not None:
            self._fast_routes.pop(ssrc, None)

    @property
    def lost(self) -> int:
        """Media packets lost for good (not even retransmitted in time)."""
        return self.losses.lost + sum(t.lost for t in self._layer_losses)

    def expire_layer_losses(self) -> list[tuple[int, list[int]]]:
        """:meth:`expire_losses` of a simulcast stream: (layer, numbers) per layer."""
        out = []
        for index, losses in enumerate(self._layer_losses):
            lost = losses.expire(self._jitter_timeout)
            if lost:
                self.stalls += 1
                out.append((index, lost))
        return out

    def expire_losses(self) -> list[int]:
        """Forgets packets missing for longer than the jitter timeout; returns their numbers.

        The publisher did not retransmit them in time (NACK/RTX): they are lost for good.
        """
        lost = self.losses.expire(self._jitter_timeout)
        if lost:
            self.stalls += 1
        return lost

    async def _rtcp(self, packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            info = packet.sender_info
            if packet.ssrc in self.sender_reports or len(self.sender_reports) < 16:
                self.sender_reports[packet.ssrc] = (
                    info.ntp_timestamp / (1 << 32),
                    info.rtp_timestamp,
                )
        await self._handle_rtcp(packet)

    async def _rtp(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        if self._rtx_types is None:
            codecs = self.receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
            self._rtx_types = {pt for pt, c in codecs.items() if c.name.lower() == "rtx"}
        if self.layered:
            self._learn_layer(packet)
        if packet.payload_type not in self._rtx_types:
            self.ssrc = packet.ssrc
            level = packet.extensions.audio_level
            if level is not None:
                self.audio_level = level
                self.audio_level_time = time.monotonic()
        await self._handle_rtp(packet, arrival_time_ms)
        if self.ssrc is not None and self.ssrc not in self._fast_stats:
            self._use_fast_path(self.ssrc)

    def codec(self, payload_type: int) -> RTCRtpCodecParameters | None:
        """The negotiated codec of a payload type (None if it is not one of them)."""
        codecs: dict[int, RTCRtpCodecParameters] = self.receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
        return codecs.get(payload_type)

    def route(self, on_packet: Callable[[RtpPacket, bool], None] | None) -> None:
        """Where this receiver's packets go from now on (None: nowhere)."""
        self._on_packet = on_packet or unrouted

    def route_layers(self, on_layer: Callable[[int, RtpPacket, bool], None] | None) -> None:
        """Where a simulcast receiver's packets go, with their layer (None: nowhere)."""
        self._on_layer = on_layer or unrouted_layer

    async def request_keyframe(self, layers: list[int] | None = None) -> None:
        """Sends a PLI (RFC 4585) for this receiver's stream to the publisher; of a
        simulcast stream, one for each of ``layers`` whose SSRC is known (None: all)."""
        if not self.layered:
            if self.ssrc is not None:
                await self._send_pli(self.ssrc)
            return
        wanted = range(len(self.rids)) if layers is None else layers
        for index in wanted:
            ssrc = self.layer_ssrcs[index] if 0 <= index < len(self.layer_ssrcs) else None
            if ssrc is not None:
                await self._send_pli(ssrc)

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


def accept_header_extensions(transceiver: Any, ids: dict[str, int]) -> None:
    """Adds header extensions (URI -> the offer's id) to those a transceiver negotiated, so
    that the answer accepts them and the transport parses them.

    aiortc parses the RID and repaired-RID extensions but never negotiates them; Chromium
    refuses a simulcast answer without them. Call after each ``setRemoteDescription``
    (which recomputes the list) and before ``createAnswer``.
    """
    have = {ext.uri for ext in transceiver._headerExtensions}
    for uri, ext_id in ids.items():
        if uri not in have:
            extension = RTCRtpHeaderExtensionParameters(id=ext_id, uri=uri)
            transceiver._headerExtensions.append(extension)


def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> Awaitable[None]:
    """Sends a PLI from a receiver, as a browser does when it lost a picture (for tests)."""
    return receiver._send_rtcp_pli(media_ssrc)
