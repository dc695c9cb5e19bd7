"""The send side of a forwarding server in aiortc: a subscriber's copy of a producer
(:class:`ForwardingTrack`), the sender's non-encoding "encoder" (:class:`Packer`), RTCP
sender reports paced by the room (:class:`RtcpClock`), codec restriction."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import (
    RTP_HISTORY_SIZE,
    HeaderExtensionsMap,
    RtcpByePacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    RtpPacket,
    wrap_rtx,
)
from aiortc.utils import random32, uint16_add

from ..rtp.arrival import Arrival
from ..rtp.header import pack_header
from ..rtp.history import PacketHistory
from ..rtp.seqmap import SeqMap
from ..rtp.vp8 import Vp8Munger
from .srtp import srtp_call

logger = logging.getLogger(__name__)


# How many video encodes a forwarding sender attempted: must stay 0 (see Packer.encode).
FORWARDING_ENCODES = 0


def encodes_attempted() -> int:
    """How many times a forwarding sender was asked to encode (must stay 0)."""
    return FORWARDING_ENCODES


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


def reuse_sender(
    sender: RTCRtpSender,
    packer: Packer,
    on_keyframe_request: Callable[[], None],
    stream_id: str,
    track: ForwardingTrack,
    previous: ForwardingTrack,
) -> None:
    """Makes an idle sender (its m-line inactive, ``previous`` stopped and its loop ended:
    :func:`sender_reusable`) forward ``track`` from the next negotiation on.

    The SSRC stays; ``track`` continues ``previous``'s sequence numbers, timestamps and
    counters, so the subscriber sees one stream that paused and resumes at a keyframe
    (as after a browser's ``replaceTrack``), and the msid changes to ``track``'s.
    Call :func:`restart_sender` once the subscriber has answered.
    """
    prepare_sender(sender, packer, on_keyframe_request, stream_id, track, None)
    sender.replaceTrack(track)
    old = previous.numbering
    clock = 48000 if track.kind == "audio" else 90000
    paused = max(0.0, time.monotonic() - previous.stopped_at) if previous.stopped_at else 0.0
    track.numbering = SeqMap(old.next_seq, old.last_timestamp + int(paused * clock) + clock)
    track._octets, track._packets = previous._octets, previous._packets
    track.codec = previous.codec


def sender_reusable(sender: RTCRtpSender) -> bool:
    """Whether a sender's forwarding loop has ended (or never started): it can take a new
    track (:func:`reuse_sender`)."""
    return not sender_running(sender)


def restart_sender(sender: RTCRtpSender, track: ForwardingTrack) -> None:
    """Starts a reused sender's forwarding loop, as aiortc's ``RTCRtpSender.send`` does the
    first time (it does nothing the second time). A sender aiortc never started is left
    to aiortc: it starts it once DTLS is connected, with ``track``'s loop."""
    if not sender._RTCRtpSender__started or track.codec is None or sender_running(sender):  # type: ignore[attr-defined]
        return
    sender._RTCRtpSender__rtp_exited.clear()  # type: ignore[attr-defined]  # stop() waits for it
    sender._RTCRtpSender__rtp_task = asyncio.ensure_future(track.run(track.codec))  # type: ignore[attr-defined]


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


# Bytes a subscriber's UDP socket may hold back (the kernel refused them) before the
# subscriber counts as too slow and drops to the next keyframe.
_SOCKET_BACKLOG_LIMIT = 512 * 1024
# A packet a subscriber NACKs is resent at most this many times, this far apart (s).
_MAX_RESENDS = 3
_RESEND_INTERVAL = 0.1

_DTLS_CONNECTED = DtlsState.CONNECTED


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
        # For a keyframe (audio: for any packet). Not "_waiting": pyee, the base of
        # MediaStreamTrack, keeps its pending async handlers under that name.
        self._awaiting_keyframe = True
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
        self.codec: RTCRtpCodecParameters | None = None  # the sender's, once run() started
        self.stopped_at: float | None = None
        # Packets go out in forward() itself: ready, nothing in the backlog, and not sent
        # through the transport's coroutine. Decided by run(), cleared by stop().
        self._direct = False
        self._through_transport = False
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
        # A simulcast consumer's VP8 picture numbering across layers (None: one encoding).
        self.munger: Vp8Munger | None = None
        # The highest VP8 temporal layer forwarded (a simulcast consumer's; 0xFF: all).
        self.max_temporal = 0xFF
        self._switching = False  # the next keyframe starts another layer
        self._last_time = 0.0  # arrival time of the newest packet sent (Unix)
        self.layer_switches = 0
        self.probe_bytes = 0
        self.nacked = 0  # packets the subscriber asked for again (a sign of loss)
        self.resent = 0  # and those resent
        self._resends: dict[int, tuple[int, float]] = {}  # seq -> (times resent, when)

    @property
    def waiting_keyframe(self) -> bool:
        return self._awaiting_keyframe and not self._audio

    @property
    def octets(self) -> int:
        """Payload bytes sent so far."""
        return self._octets

    @property
    def depth(self) -> int:
        """Frames waiting in the backlog. (Not ``__len__``: aiortc tests tracks for truth.)"""
        return self._backlog_frames

    # --- the producer's side ------------------------------------------------------------

    def forward(self, packet: RtpPacket, starts_keyframe: bool, arrival: Arrival) -> None:
        """Sends (or queues) one of the producer's packets; never blocks, never raises."""
        if self._direct and not self._awaiting_keyframe and self.munger is None:
            mapped = self.numbering.in_order(packet.sequence_number, packet.timestamp)
            if mapped is not None:  # the next packet in order, the common case
                self._send_now(self._packed(packet, packet.payload, mapped[0], mapped[1], arrival))
                return
        if self._awaiting_keyframe:
            if not starts_keyframe or self.readyState != "live":
                if packet.marker:
                    self.dropped += 1
                return
            self._awaiting_keyframe = False
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

    def switch_layer(self) -> None:
        """The next packet forwarded is the first of a keyframe of another simulcast layer
        (its own numbers, timestamps and picture ids): the subscriber's stream continues
        from the last packet sent, without a gap or a step back."""
        if self.munger is None:
            self.munger = Vp8Munger()
        self._switching = True
        self._awaiting_keyframe = True
        self.waiting_since = time.monotonic()

    def pause_until_keyframe(self) -> None:
        """Forwarding resumes (after a pause: a hidden tile) at the next keyframe."""
        self._awaiting_keyframe = True
        self.waiting_since = time.monotonic()

    def skip_loss(self, lost: list[int]) -> None:
        """The producer's packets ``lost`` (its numbers) never came: fill this subscriber's
        holes with padding and wait for a keyframe.

        Padding packets take every number still missing in the subscriber's stream since
        its last (re)start (up to the retransmission history), so a receiver that waits
        for every packet (aiortc's jitter buffer) moves on instead of stalling, also for
        losses that would expire later. A subscriber whose stream started after the loss
        is not affected.
        """
        if self._audio or self._awaiting_keyframe or not self.ready:
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
                    header = pack_header(0xA0, self.payload_type, seq, timestamp, self._ssrc)
                    self._send_now(header + b"\x01")  # padding only (RFC 3550 5.1)
                seq = (seq + 1) & 0xFFFF
        self._awaiting_keyframe = True
        self.waiting_since = time.monotonic()

    def _overflow(self) -> None:
        """The subscriber fell behind: drop all but a frame half sent, wait for a keyframe."""
        self.overflows += 1
        kept = deque(e for e in self._backlog if e[0].timestamp == self._sending_ts)
        dropped = self._backlog_frames - sum(1 for e in kept if e[0].marker or self._audio)
        self.dropped += dropped
        self._backlog = kept
        self._backlog_frames -= dropped
        self._awaiting_keyframe = True
        self.waiting_since = time.monotonic()
        if not self._audio:
            self._request_keyframe()

    # --- the subscriber's side ------------------------------------------------------------

    def _rewrite(self, packet: RtpPacket, restart: bool, arrival: Arrival) -> bytes | None:
        """The packet as this subscriber's sender sends it, or None if it came too late."""
        numbering = self.numbering
        munger = self.munger  # a simulcast consumer's: only it switches layers and drops
        payload = packet.payload
        if restart and self._switching:
            self._switching = False
            self.layer_switches += 1
            assert munger is not None  # switch_layer made it
            munger.switch()
            payload = munger.munge(payload, self.max_temporal) or payload  # a keyframe: TID 0
            clock = 90000
            step = int((arrival.time - self._last_time) * clock) if self._last_time else 0
            # At least one frame interval (30 fps): the new picture is a new instant.
            step = min(max(step, clock // 30), 10 * clock)
            seq, timestamp = numbering.switch(packet.sequence_number, packet.timestamp, step)
        elif restart:
            if munger is not None:
                payload = munger.munge(payload, self.max_temporal) or payload
            seq, timestamp = numbering.restart(packet.sequence_number, packet.timestamp)
        else:
            if munger is not None:
                late = not numbering.newer(packet.sequence_number)
                munged = munger.munge(payload, self.max_temporal, late)
                if munged is None:  # a picture of a temporal layer not forwarded
                    if not late:
                        numbering.drop(packet.sequence_number)
                    return None
                payload = munged
            mapped = numbering.map(packet.sequence_number, packet.timestamp)
            if mapped is None:
                return None  # from before the last skip: the subscriber never expects it
            seq, timestamp = mapped
        if munger is not None:
            self._last_time = arrival.time
        return self._packed(packet, payload, seq, timestamp, arrival)

    def _packed(
        self, packet: RtpPacket, payload: bytes, seq: int, timestamp: int, arrival: Arrival
    ) -> bytes:
        """The packet with this subscriber's header and extensions, kept for NACKs and
        counted (per frame: what aiortc's RTCP sender reports read)."""
        marker = packet.marker
        header = pack_header(
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
                    if not self._awaiting_keyframe:
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
        assert codec.payloadType is not None  # negotiated codecs have one
        self.payload_type = codec.payloadType
        self._ssrc = sender._ssrc
        self.codec = codec  # a reused m-line's next track runs with it (restart_sender)
        self._head, self._tail, self._with_time = _extension_block(sender)
        # First header byte: version 2, extension bit if there is an extension block.
        self._first_byte = 0x90 if self._head else 0x80
        self._dtls = sender.transport
        self._ice = self._dtls.transport._connection
        self.ready = True
        if self._awaiting_keyframe and not self._audio:
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
                    if self._through_transport:
                        await self._dtls._send_rtp(data)
                    else:
                        self._send_now(data)
                self._sending_ts = None
                # From now on forward() sends, unless packets must take the transport.
                self._direct = self.ready and not self._through_transport
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
        """Resends a packet a subscriber NACKed (as RTX if negotiated), like aiortc; but
        each packet at most ``_MAX_RESENDS`` times and not again within
        ``_RESEND_INTERVAL`` (LiveKit's sequencer, mediasoup's retransmission buffer): a
        congested link NACKs the same packets every round trip, and resending them all
        would fill it with retransmissions."""
        self.nacked += 1
        data = self.history.find(sequence_number)
        sender = self.sender
        if data is None or sender is None:
            return
        now = time.monotonic()
        resends = self._resends
        count, at = resends.get(sequence_number, (0, 0.0))
        if count >= _MAX_RESENDS or now - at < _RESEND_INTERVAL:
            return
        if len(resends) >= 2 * RTP_HISTORY_SIZE:
            resends.clear()  # entries older than the history are for packets long gone
        resends[sequence_number] = (count + 1, now)
        self.resent += 1
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

    def send_probe(self, budget: int) -> int:
        """Sends up to ``budget`` bytes of probe: the newest packets sent, again, as
        retransmissions (RTX) stamped with the time now, as libwebrtc pads its own probes.
        The subscriber's decoder drops them as duplicates; its bandwidth estimate counts
        them, so a subscriber held on a small layer can show room for a bigger one. Returns
        the bytes sent (0 without RTX, or before anything was sent)."""
        sender = self.sender
        if sender is None or not self._direct or self._audio:
            return 0
        rtx_payload_type = sender._RTCRtpSender__rtx_payload_type  # type: ignore[attr-defined]
        if rtx_payload_type is None:
            return 0
        ext_map = sender._RTCRtpSender__rtp_header_extensions_map  # type: ignore[attr-defined]
        abs_send_time = Arrival.now().abs_send_time
        sent = 0
        seq = (self.numbering.next_seq - 1) & 0xFFFF
        for _ in range(64):
            data = self.history.find(seq)
            if data is None or sent >= budget:
                break
            packet = RtpPacket.parse(data, ext_map)
            packet.extensions.abs_send_time = abs_send_time
            rtx_seq = sender._RTCRtpSender__rtx_sequence_number  # type: ignore[attr-defined]
            rtx = wrap_rtx(packet, rtx_payload_type, rtx_seq, sender._rtx_ssrc)
            sender._RTCRtpSender__rtx_sequence_number = uint16_add(rtx_seq, 1)  # type: ignore[attr-defined]
            out = rtx.serialize(ext_map)
            self._send_now(out)
            sent += len(out)
            seq = (seq - 1) & 0xFFFF
        self.probe_bytes += sent
        return sent

    async def recv(self) -> Any:
        # Nothing pulls from a forwarding track (its sender's loop is replaced).
        while self.readyState == "live":
            self._wakeup.clear()
            await self._wakeup.wait()
        raise MediaStreamError

    def send_through_transport(self) -> None:
        """From now on every packet goes through the DTLS transport's ``_send_rtp``, not
        straight to the socket: for something that wraps that coroutine (a test's emulated
        link)."""
        self._through_transport = True
        self._direct = False
        self._wakeup.set()

    def stop(self) -> None:
        super().stop()
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()
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
