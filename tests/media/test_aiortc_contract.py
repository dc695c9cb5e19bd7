"""The aiortc internals sfu/media/aiortc/ relies on are still there and behave.

If one of these fails after an aiortc upgrade, the SFU would silently decode, re-encode,
drop keyframe requests or stall: fix sfu/media/aiortc/ before relaxing the pin in pyproject.
These tests touch aiortc's private API on purpose, to check it.
"""

from __future__ import annotations

import asyncio
import queue
from importlib.metadata import version
from types import SimpleNamespace
from typing import Any

import aioice.ice
import aiortc
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, clock
from aiortc.codecs import depayload
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import (
    RTCRtcpParameters,
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpRtxParameters,
    RTCRtpSendParameters,
)
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    HeaderExtensionsMap,
    RtcpByePacket,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    is_rtcp,
    pack_remb_fci,
    wrap_rtx,
)
from pylibsrtp import Error as SrtpError
from pylibsrtp import Policy, Session

from sfu.media.aiortc import sender as tx
from sfu.media.aiortc import srtp, transport
from sfu.media.aiortc.receiver import ReceiverTap
from sfu.media.aiortc.sender import ForwardingTrack, Packer
from sfu.media.frames import EncodedFrame
from sfu.media.ice import rtc_configuration
from sfu.media.rtp import codecs
from sfu.media.rtp.arrival import Arrival
from sfu.media.rtp.assembler import FrameAssembler
from sfu.settings import load_settings
from tests.support.link import LinkEmulator

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)
# A VP8 key frame header (frame tag with bit 0 clear, start code 9d 01 2a), then filler.
KEYFRAME = b"\x10\x02\x00\x9d\x01\x2a\x40\x01\xf0\x00" + bytes(range(256)) * 8
INTERFRAME = b"\x31\x02\x00" + bytes(range(200))


def test_pinned_version() -> None:
    assert aiortc.__version__.startswith("1.16."), "re-check sfu/media/aiortc/ for this aiortc"
    assert version("pylibsrtp").startswith("1.0."), "re-check srtp.srtp_call"


def test_srtp_calls_are_pylibsrtps() -> None:
    # srtp_call calls libsrtp through pylibsrtp's binding with one shared buffer: the same
    # bytes as pylibsrtp's own Session.protect/unprotect, and its errors.
    key = bytes(range(30))
    policy = {"key": key, "srtp_profile": Policy.SRTP_PROFILE_AES128_CM_SHA1_80}
    ours = Session(Policy(ssrc_type=Policy.SSRC_ANY_OUTBOUND, **policy))  # type: ignore[arg-type]
    theirs = Session(Policy(ssrc_type=Policy.SSRC_ANY_OUTBOUND, **policy))  # type: ignore[arg-type]
    receiving = Session(Policy(ssrc_type=Policy.SSRC_ANY_INBOUND, **policy))  # type: ignore[arg-type]
    protect = srtp.srtp_call(ours, "protect")
    unprotect = srtp.srtp_call(receiving, "unprotect")
    for seq in range(5):
        plain = RtpPacket(payload_type=96, sequence_number=seq, ssrc=7, payload=bytes(1000))
        data = plain.serialize()
        sent = protect(data)
        assert sent == theirs.protect(data) and len(sent) == len(data) + 10
        assert unprotect(sent) == data
    with pytest.raises(SrtpError):
        unprotect(sent)  # a replay
    with pytest.raises(ValueError):
        protect(bytes(1501))
    stand_in = SimpleNamespace(protect=lambda data: data)
    assert srtp.srtp_call(stand_in, "protect") is stand_in.protect


def test_packetizers_round_trip() -> None:
    payloads = Vp8Encoder._packetize(KEYFRAME, 5)
    assert len(payloads) > 1
    assert b"".join(depayload(VP8, p) for p in payloads) == KEYFRAME
    h264 = b"\x00\x00\x00\x01\x67\x42\x00\x1f" + b"\x00\x00\x00\x01\x65" + bytes(3000)
    packets = H264Encoder._packetize(H264Encoder._split_bitstream(h264))
    h264_codec = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=99)
    data = b"".join(depayload(h264_codec, p) for p in packets)
    assert codecs.is_keyframe("H264", data)
    assert data.replace(b"\x00\x00\x00\x01", b"") == h264.replace(b"\x00\x00\x00\x01", b"")


async def test_sender_uses_the_packer_and_routes_feedback() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        requests: list[int] = []
        rembs: list[int] = []
        track = ForwardingTrack("video", "t1", 4, request_keyframe=lambda: None)
        transceiver = pc.addTransceiver(track, direction="sendonly")
        sender = transceiver.sender
        assert tx.sender_packer(sender) is None  # aiortc creates it lazily
        assert tx.sender_running(sender) is False  # no RTP loop before DTLS
        packer = Packer(on_remb=rembs.append)
        tx.prepare_sender(sender, packer, lambda: requests.append(1), "alice", track)
        assert tx.sender_packer(sender) is packer
        # The packer refuses (and counts) any attempt to encode or packetize.
        with pytest.raises(RuntimeError):
            packer.pack(b"frame")
        assert tx.FORWARDING_ENCODES == 1
        tx.FORWARDING_ENCODES = 0

        # A subscriber's PLI calls _send_keyframe; its REMB sets encoder.target_bitrate.
        ssrc = sender._ssrc
        await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=ssrc))
        assert requests == [1]
        await sender._handle_rtcp_packet(
            RtcpPsfbPacket(
                fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(321000, [ssrc])
            )
        )
        assert rembs == [321000]

        # The stream id set for the sender is the msid browsers group tracks by.
        await pc.setLocalDescription(await pc.createOffer())
        assert "a=msid:alice t1" in pc.localDescription.sdp

        # A stopped forwarding track ends recv() with MediaStreamError.
        track.stop()
        with pytest.raises(MediaStreamError):
            await track.recv()
    finally:
        await pc.close()


def rtp_packets(frames: list[bytes], first_seq: int = 100) -> list[RtpPacket]:
    packets = []
    seq = first_seq
    for index, frame in enumerate(frames):
        payloads = Vp8Encoder._packetize(frame, index)
        for i, payload in enumerate(payloads):
            packet = RtpPacket(payload_type=97, sequence_number=seq, timestamp=index * 3000)
            packet.ssrc = 1234
            packet.marker = int(i == len(payloads) - 1)
            packet.payload = payload
            packets.append(packet)
            seq += 1
    return packets


async def test_receiver_tap_packets_make_frames_and_losses_skip_to_a_keyframe() -> None:
    """What the recorder gets: the tap's packets, assembled as the router's observer does
    (sfu/media/observer.py), are the publisher's frames, bytes unchanged; a packet that
    never comes is given up after the jitter timeout and frames resume at a keyframe."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver = pc.addTransceiver("video", direction="recvonly").receiver
    try:
        assert isinstance(receiver._RTCRtpReceiver__decoder_queue, queue.Queue)
        assert receiver._RTCRtpReceiver__remote_bitrate_estimator is not None
        frames: list[EncodedFrame] = []
        assembler = FrameAssembler("VP8", "video", 90000)

        def on_packet(packet: RtpPacket, start: bool) -> None:
            frames.extend(
                assembler.push(
                    packet.sequence_number, packet.timestamp, bool(packet.marker), packet.payload
                )
            )

        # aiortc sets the track in setRemoteDescription; this test has no remote peer.
        receiver._track = RemoteStreamTrack(kind="video")
        tap = ReceiverTap(receiver, "video", jitter_timeout=0.2, on_packet=on_packet)
        tap.cap_remb(lambda: 100_000)
        await receiver.receive(
            RTCRtpReceiveParameters(
                codecs=[VP8], encodings=[RTCRtpDecodingParameters(ssrc=1234, payloadType=97)]
            )
        )
        assert tap.codec(97) is not None and tap.codec(97).name == "VP8"
        packets = rtp_packets([KEYFRAME, INTERFRAME, INTERFRAME, KEYFRAME, INTERFRAME])
        for packet in packets[:-2]:
            await receiver._handle_rtp_packet(packet, arrival_time_ms=0)
        assert [f.data for f in frames[:3]] == [KEYFRAME, INTERFRAME, INTERFRAME]
        assert [f.keyframe for f in frames[:3]] == [True, False, False]
        assert [f.timestamp for f in frames[:3]] == [0, 3000, 6000]
        assert tap.ssrc == 1234

        # A packet that never comes: after jitter_timeout it is given up, the frame it
        # belonged to is dropped, and frames resume at the next keyframe.
        released = len(frames)
        later = rtp_packets(
            [INTERFRAME, INTERFRAME, KEYFRAME, INTERFRAME],
            first_seq=packets[-3].sequence_number + 1 + 10,
        )
        for packet in later:
            packet.timestamp += 20 * 3000
        hole = later.pop(0)  # the first of the next frames never arrives
        for packet in later:
            await receiver._handle_rtp_packet(packet, arrival_time_ms=0)
        assert tap.expire_losses() == []
        await asyncio.sleep(0.25)
        lost = tap.expire_losses()
        assert hole.sequence_number in lost and tap.stalls == 1
        frames.extend(assembler.lost(lost))
        resumed = frames[released:]
        assert resumed and resumed[0].keyframe, [f.keyframe for f in resumed]
        assert [f.data for f in resumed] == [KEYFRAME, INTERFRAME]
    finally:
        await pc.close()
    # Stopping the receiver ends aiortc's decoder thread (it waited on the tap's queue).
    assert not any(t.name == "video-decoder" and t.is_alive() for t in _threads())


async def test_receiver_tap_forwards_packets_as_they_arrive() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver = pc.addTransceiver("video", direction="recvonly").receiver
    try:
        got: list[tuple[int, bool]] = []
        receiver._track = RemoteStreamTrack(kind="video")
        tap = ReceiverTap(
            receiver,
            "video",
            jitter_timeout=0.1,
            on_packet=lambda packet, start: got.append((packet.sequence_number, start)),
        )
        await receiver.receive(
            RTCRtpReceiveParameters(
                codecs=[VP8, RTX],
                encodings=[
                    RTCRtpDecodingParameters(
                        ssrc=1234, payloadType=97, rtx=RTCRtpRtxParameters(ssrc=5678)
                    )
                ],
            )
        )
        packets = rtp_packets([KEYFRAME, INTERFRAME, INTERFRAME, KEYFRAME, INTERFRAME])
        lost = packets.pop(2)  # of the first frame, comes back later as RTX
        for packet in packets:
            await receiver._handle_rtp_packet(packet, arrival_time_ms=0)
        # Every packet at once, in arrival order; the first of each keyframe marked.
        assert [seq for seq, _ in got] == [p.sequence_number for p in packets]
        starts = [p.sequence_number for p in packets if p.timestamp in (0, 9000)]
        assert [seq for seq, start in got if start] == [starts[0], starts[len(starts) // 2]]
        # The retransmission arrives unwrapped, with the original sequence number.
        rtx = wrap_rtx(lost, payload_type=98, sequence_number=1, ssrc=5678)
        await receiver._handle_rtp_packet(rtx, arrival_time_ms=0)
        assert got[-1] == (lost.sequence_number, False)
        assert tap.expire_losses() == []  # it came back
        # Packets that came before, again (a publisher pads its uplink with retransmissions
        # nobody asked for): not forwarded.
        count = len(got)
        for n, again in enumerate([lost, packets[0]]):
            await receiver._handle_rtp_packet(wrap_rtx(again, 98, 2 + n, 5678), arrival_time_ms=0)
        assert len(got) == count
        # A packet that never comes is lost for good after the jitter timeout.
        more = rtp_packets([INTERFRAME] * 3, first_seq=packets[-1].sequence_number + 2)
        for packet in more:
            packet.timestamp += 30000
            await receiver._handle_rtp_packet(packet, arrival_time_ms=0)
        assert tap.expire_losses() == []
        await asyncio.sleep(0.15)
        assert tap.expire_losses() == [packets[-1].sequence_number + 1] and tap.lost == 1
        # A keyframe whose first packet comes after its second starts nobody: a subscriber
        # would begin on a frame whose rest it has not got.
        late_key = rtp_packets([KEYFRAME], first_seq=more[-1].sequence_number + 1)
        for packet in late_key:
            packet.timestamp += 90000
        count = len(got)
        await receiver._handle_rtp_packet(late_key[1], arrival_time_ms=0)
        await receiver._handle_rtp_packet(late_key[0], arrival_time_ms=0)
        assert got[count:] == [
            (late_key[1].sequence_number, False),
            (late_key[0].sequence_number, False),
        ]
    finally:
        await pc.close()


def _threads() -> list:
    import threading

    return threading.enumerate()


def test_host_address_hook_is_used_by_aioice() -> None:
    source = aioice.ice.Connection.gather_candidates.__code__.co_names
    assert "get_host_addresses" in source
    transport.pin_host_addresses(["10.213.0.1"])
    try:
        assert aioice.ice.get_host_addresses(True, False) == ["10.213.0.1"]
    finally:
        transport.pin_host_addresses([])


@pytest.mark.webrtc
async def test_pinned_host_addresses_are_the_only_candidates(netns) -> None:
    transport.pin_host_addresses(["10.213.0.2"])
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("audio")
        await pc.setLocalDescription(await pc.createOffer())
        candidates = [
            line for line in pc.localDescription.sdp.splitlines() if line.startswith("a=candidate")
        ]
        assert candidates
        assert all(" 10.213.0.2 " in line for line in candidates), candidates
    finally:
        transport.pin_host_addresses([])
        await pc.close()


def test_transceiver_codecs_and_sender_transport_hooks() -> None:
    # restrict_codecs edits transceiver._codecs; LinkEmulator wraps transport._send_rtp.
    async def check() -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            transceiver = pc.addTransceiver("video")
            assert hasattr(transceiver, "_codecs")
            assert callable(transceiver.sender.transport._send_rtp)
            assert callable(transceiver.receiver._send_rtcp)
            assert "_send_keyframe" in RTCRtpSender.__dict__
        finally:
            await pc.close()

    asyncio.run(check())


def test_call_sites_look_hooks_up_on_the_instance() -> None:
    # Each hook in sfu/media/aiortc/ replaces an attribute of one object; aiortc must still
    # look these up through ``self`` at call time, at these call sites.
    from aiortc.rtcdtlstransport import RTCDtlsTransport
    from aiortc.rtcrtpreceiver import RTCRtpReceiver

    def names(function: object) -> set[str]:
        return set(function.__code__.co_names)  # type: ignore[attr-defined]

    assert {"_handle_rtcp_data", "_handle_rtp_data"} <= names(RTCDtlsTransport._recv_next)
    # PeerActivity reads the DTLS transport's receive counter (counted in _recv_next).
    assert "_RTCDtlsTransport__rx_packets" in names(RTCDtlsTransport._recv_next)
    assert "_handle_rtp_packet" in names(RTCDtlsTransport._handle_rtp_data)
    assert "_handle_rtcp_packet" in names(RTCDtlsTransport._handle_rtcp_data)
    # Frame timestamps are counted from the first one by a mapper whose origin gives RTP's
    # back (ReceiverTap's capture times from sender reports).
    from aiortc.rtcrtpreceiver import TimestampMapper

    mapper = TimestampMapper()
    assert mapper.map(4_000_000_000) == 0 and mapper._origin == 4_000_000_000
    assert "_RTCRtpReceiver__timestamp_mapper" in names(RTCRtpReceiver.__init__)
    assert "_send_rtcp_pli" in names(RTCRtpReceiver._handle_rtp_packet)
    assert "_send_keyframe" in names(RTCRtpSender._handle_rtcp_packet)
    assert "target_bitrate" in names(RTCRtpSender._handle_rtcp_packet)
    # _JitterTap stands in for the jitter buffer: aiortc calls its add() with each packet
    # after unwrapping RTX and depayloading.
    assert {"_RTCRtpReceiver__jitter_buffer", "add", "unwrap_rtx", "depayload"} <= names(
        RTCRtpReceiver._handle_rtp_packet
    )
    # ReceiverTap._fast does aiortc's receive work for a media packet itself (estimator,
    # statistics, NACK, with aiortc's own objects), after aiortc's router would have picked
    # the receiver by SSRC. If aiortc's receive work changes, these names change: re-check.
    assert set(RTCRtpReceiver._handle_rtp_packet.__code__.co_names) == {
        "RTCP_PSFB_APP", "RtcpPsfbPacket", "StreamStatistics", "ValueError",
        "_RTCRtpReceiver__active_ssrc", "_RTCRtpReceiver__codecs",
        "_RTCRtpReceiver__decoder_error", "_RTCRtpReceiver__decoder_queue",
        "_RTCRtpReceiver__decoder_thread", "_RTCRtpReceiver__jitter_buffer",
        "_RTCRtpReceiver__kind", "_RTCRtpReceiver__log_debug",
        "_RTCRtpReceiver__nack_generator", "_RTCRtpReceiver__remote_bitrate_estimator",
        "_RTCRtpReceiver__remote_streams", "_RTCRtpReceiver__rtcp_ssrc",
        "_RTCRtpReceiver__rtx_ssrc", "_RTCRtpReceiver__timestamp_mapper", "_data", "_enabled",
        "_send_rtcp", "_send_rtcp_nack", "_send_rtcp_pli", "abs_send_time", "add", "clear",
        "clock", "clockRate", "current_datetime", "depayload", "extensions", "get", "int",
        "is_rtx", "is_set", "isinstance", "len", "map", "missing", "pack_remb_fci",
        "padding_size", "parameters", "payload", "payload_type", "put", "sorted", "ssrc",
        "timestamp", "unwrap_rtx",
    }  # fmt: skip
    from aiortc.rtcdtlstransport import RtpRouter

    assert {"_rtp_router", "route_rtp"} <= names(RTCDtlsTransport._handle_rtp_data)
    assert {"ssrc_table", "payload_type_table"} <= names(RtpRouter.route_rtp)
    ids = HeaderExtensionsMap()._HeaderExtensionsMap__ids
    assert hasattr(ids, "abs_send_time") and hasattr(ids, "audio_level")
    # ForwardingTrack replaces the sender's _run_rtp and _retransmit.
    assert "_run_rtp" in names(RTCRtpSender.send)
    assert "_retransmit" in names(RTCRtpSender._handle_rtcp_packet)
    # ForwardingTrack._send_now does what RTCDtlsTransport._send_rtp, RTCIceTransport._send,
    # aioice's Connection.send/sendto and StunProtocol.send_data do, in one call.
    from aiortc.rtcicetransport import RTCIceTransport

    assert {"_state", "_tx_srtp", "protect", "transport", "_send"} <= names(
        RTCDtlsTransport._send_rtp
    )
    assert {"_connection", "send", "_send"} <= names(RTCIceTransport.__init__)  # _send = send
    assert "sendto" in names(aioice.ice.Connection.send)
    assert {"_nominated", "protocol", "send_data", "remote_addr"} <= names(
        aioice.ice.Connection.sendto
    )
    assert {"transport", "sendto"} <= names(aioice.ice.StunProtocol.send_data)
    # ... and asyncio's datagram transport: straight to its socket while it holds nothing.
    from asyncio.selector_events import _SelectorDatagramTransport

    assert {"_buffer", "_sock", "sendto"} <= names(_SelectorDatagramTransport.sendto)
    # receive_directly stands in for StunProtocol.datagram_received (looked up on the
    # instance by asyncio's transport) and does what RTCDtlsTransport._recv_next does for
    # SRTP: count, unprotect with _rx_srtp, dispatch.
    assert "data_received" in names(aioice.ice.StunProtocol.datagram_received)
    assert {"_queue", "put_nowait"} <= names(aioice.ice.Connection.data_received)
    assert {
        "_rx_srtp", "unprotect", "unprotect_rtcp", "_handle_rtp_data", "_handle_rtcp_data",
        "is_rtcp", "current_ms",
    } <= names(RTCDtlsTransport._recv_next)  # fmt: skip


def test_aiortc_send_loop_is_the_one_forwarding_reimplements() -> None:
    # ForwardingTrack (run, _rewrite, retransmit) mirrors aiortc 1.16's RTCRtpSender._run_rtp
    # and _retransmit (same packets, history, counters). If aiortc's loop changes (a new
    # header extension, pacing, other counters), these names change: re-check it.
    run_rtp = {
        "CancelledError", "ConnectionError", "Exception", "MediaStreamError",
        "RTP_HISTORY_SIZE", "RtpPacket", "_RTCRtpSender__encoder", "_RTCRtpSender__log_debug",
        "_RTCRtpSender__log_warning", "_RTCRtpSender__mid", "_RTCRtpSender__ntp_timestamp",
        "_RTCRtpSender__octet_count", "_RTCRtpSender__packet_count", "_RTCRtpSender__rtp_exited",
        "_RTCRtpSender__rtp_header_extensions_map", "_RTCRtpSender__rtp_history",
        "_RTCRtpSender__rtp_started", "_RTCRtpSender__rtp_timestamp", "_RTCRtpSender__track",
        "_next_encoded_frame", "_send_rtp", "_ssrc", "abs_send_time", "asyncio", "audio_level",
        "clock", "current_ntp_time", "enumerate", "extensions", "format_exc", "len", "marker",
        "mid", "payload", "payloadType", "payloads", "random32", "random_sequence_number",
        "sequence_number", "serialize", "set", "sleep", "ssrc", "stop", "timestamp",
        "traceback", "transport", "uint16_add", "uint32_add",
    }  # fmt: skip
    retransmit = {
        "RTP_HISTORY_SIZE", "_RTCRtpSender__log_debug", "_RTCRtpSender__rtp_header_extensions_map",
        "_RTCRtpSender__rtp_history", "_RTCRtpSender__rtx_payload_type",
        "_RTCRtpSender__rtx_sequence_number", "_rtx_ssrc", "_send_rtp", "get",
        "sequence_number", "serialize", "transport", "uint16_add", "wrap_rtx",
    }  # fmt: skip
    assert set(RTCRtpSender._run_rtp.__code__.co_names) == run_rtp
    # ... and _run_sender_rtcp mirrors _run_rtcp (SR, SDES, BYE), paced by an RtcpClock.
    assert set(RTCRtpSender._run_rtcp.__code__.co_names) == {
        "CancelledError", "RtcpByePacket", "RtcpSdesPacket", "RtcpSenderInfo", "RtcpSourceInfo",
        "RtcpSrPacket", "_RTCRtpSender__cname", "_RTCRtpSender__log_debug",
        "_RTCRtpSender__lsr", "_RTCRtpSender__lsr_time", "_RTCRtpSender__ntp_timestamp",
        "_RTCRtpSender__octet_count", "_RTCRtpSender__packet_count",
        "_RTCRtpSender__rtcp_exited", "_RTCRtpSender__rtcp_started",
        "_RTCRtpSender__rtp_timestamp", "_send_rtcp", "_ssrc", "append", "asyncio", "encode",
        "random", "set", "sleep", "time",
    }  # fmt: skip
    assert {"_run_rtcp", "_run_rtp"} <= set(RTCRtpSender.send.__code__.co_names)
    assert set(RTCRtpSender._retransmit.__code__.co_names) == retransmit


RTX = RTCRtpCodecParameters(
    mimeType="video/rtx", clockRate=90000, payloadType=98, parameters={"apt": 97}
)
EXTENSIONS = [
    RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
    RTCRtpHeaderExtensionParameters(
        id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
    ),
]


class _PayloadTrack(MediaStreamTrack):
    """Hands aiortc's own send loop pre-made payloads (its encoder's ``pack`` returns them)."""

    kind = "video"

    def __init__(self, frames: list[tuple[list[bytes], int]]) -> None:
        super().__init__()
        self.frames = list(frames)

    async def recv(self) -> tuple[list[bytes], int]:  # type: ignore[override]
        if not self.frames:
            await asyncio.sleep(3600)
        return self.frames.pop(0)


class _PassEncoder:
    def pack(self, data: tuple[list[bytes], int]) -> tuple[list[bytes], int]:
        return data


def _publisher_frames() -> list[tuple[list[bytes], int]]:
    """Three frames as a publisher packetizes them (its own VP8 picture ids)."""
    return [
        (Vp8Encoder._packetize(KEYFRAME, 40), 0),
        (Vp8Encoder._packetize(INTERFRAME, 41), 3000),
        (Vp8Encoder._packetize(KEYFRAME * 2, 42), 6000),
    ]


async def _send(
    frames: list[tuple[list[bytes], int]], forwarding_track: bool, rtx: bool = False
) -> tuple[RTCPeerConnection, RTCRtpSender, list[bytes]]:
    """Frames' payloads through a sender, by ForwardingTrack or aiortc's own loop: the RTP
    sent. ForwardingTrack gets them as the publisher's RTP packets."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    track: MediaStreamTrack
    if forwarding_track:
        track = ForwardingTrack("video", "t1", 16, request_keyframe=lambda: None)
    else:
        track = _PayloadTrack(frames)
    sender = pc.addTransceiver(track, direction="sendonly").sender
    if forwarding_track:
        packer = Packer(on_remb=lambda bitrate: None)
        tx.prepare_sender(sender, packer, lambda: None, "s", track)  # type: ignore[arg-type]
    else:
        sender._RTCRtpSender__encoder = _PassEncoder()
    sent: list[bytes] = []

    async def capture(data: bytes) -> None:
        if not is_rtcp(data):
            sent.append(data)

    # A wrapped transport: ForwardingTrack sends through it from its backlog.
    sender.transport._send_rtp = capture
    if isinstance(track, ForwardingTrack):
        track.send_through_transport()
    await sender.send(
        RTCRtpSendParameters(
            codecs=[VP8, RTX] if rtx else [VP8],
            headerExtensions=EXTENSIONS,
            muxId="0",
            rtcp=RTCRtcpParameters(cname="test"),
        )
    )
    if forwarding_track:
        seq = 65530  # the publisher's numbers wrap
        for payloads, timestamp in frames:
            for i, payload in enumerate(payloads):
                packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=timestamp)
                packet.marker = int(i == len(payloads) - 1)
                packet.payload = payload
                track.forward(packet, i == 0 and timestamp != 3000, Arrival.now())  # type: ignore[attr-defined]
                seq = (seq + 1) & 0xFFFF
    count = sum(len(p) for p, _ in frames)
    async with asyncio.timeout(5):
        while len(sent) < count:  # noqa: ASYNC110 - no event to await
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    return pc, sender, sent


async def test_forwarding_track_sends_what_aiortc_sends() -> None:
    frames = _publisher_frames()
    ext_map = HeaderExtensionsMap()
    ext_map.configure(RTCRtpSendParameters(headerExtensions=EXTENSIONS))
    ours_pc, ours, ours_sent = await _send(frames, forwarding_track=True)
    theirs_pc, theirs, theirs_sent = await _send(frames, forwarding_track=False)
    try:
        assert len(ours_sent) == len(theirs_sent) > len(frames)
        mine = [RtpPacket.parse(d, ext_map) for d in ours_sent]
        aiortc_packets = [RtpPacket.parse(d, ext_map) for d in theirs_sent]
        now = (clock.current_ntp_time() >> 14) & 0xFFFFFF
        first_seq, first_ts = mine[0].sequence_number, mine[0].timestamp
        their_first_ts = aiortc_packets[0].timestamp
        for i, (a, b, raw) in enumerate(zip(aiortc_packets, mine, ours_sent, strict=True)):
            assert b.ssrc == ours._ssrc
            assert b.payload_type == 97  # the subscriber's, not the publisher's (96)
            assert b.sequence_number == (first_seq + i) & 0xFFFF
            assert (b.timestamp - first_ts) & 0xFFFFFFFF == (a.timestamp - their_first_ts) & (
                0xFFFFFFFF
            )
            assert b.extensions.mid == "0"
            assert abs(b.extensions.abs_send_time - now) < 1 << 18  # within a second
            # Byte for byte aiortc's packet, but for the random origins and the send time.
            a.sequence_number, a.timestamp, a.ssrc = b.sequence_number, b.timestamp, b.ssrc
            a.extensions.abs_send_time = b.extensions.abs_send_time
            assert a.serialize(ext_map) == raw
        # The counters RTCP sender reports and getStats use.
        for sender in (ours, theirs):
            stats = [s for s in (await sender.getStats()).values() if s.type == "outbound-rtp"]
            assert stats[0].packetsSent == len(ours_sent)
            assert stats[0].bytesSent == sum(len(p.payload) for p in mine)
        assert ours._RTCRtpSender__rtp_timestamp == mine[-1].timestamp
        # The sender report's NTP time, from a cheaper clock than aiortc's.
        assert abs(ours._RTCRtpSender__ntp_timestamp - clock.current_ntp_time()) < 1 << 32

        # A NACKed packet is resent as it was (no RTX negotiated).
        nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=ours._ssrc)
        nack.lost = [mine[1].sequence_number]
        await ours._handle_rtcp_packet(nack)
        assert ours_sent[-1] == ours_sent[1]
    finally:
        await ours_pc.close()
        await theirs_pc.close()
    # The loop ended with the sender (aiortc's stop() waits for it).
    assert ours._RTCRtpSender__rtp_exited.is_set()
    assert tx.sender_packer(ours) is None


async def test_forwarding_track_retransmits_as_rtx() -> None:
    ext_map = HeaderExtensionsMap()
    ext_map.configure(RTCRtpSendParameters(headerExtensions=EXTENSIONS))
    pc, sender, sent = await _send(_publisher_frames()[:1], forwarding_track=True, rtx=True)
    try:
        original = RtpPacket.parse(sent[1], ext_map)
        nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=sender._ssrc)
        nack.lost = [original.sequence_number, (original.sequence_number + 1000) & 0xFFFF]
        count = len(sent)
        await sender._handle_rtcp_packet(nack)
        assert len(sent) == count + 1  # the unknown sequence number is not resent
        rtx = RtpPacket.parse(sent[-1], ext_map)
        assert rtx.payload_type == 98
        assert rtx.ssrc == sender._rtx_ssrc
        assert rtx.payload == original.sequence_number.to_bytes(2) + original.payload
        assert rtx.timestamp == original.timestamp
        assert rtx.extensions.mid == "0"
        # The same NACK again at once (a congested link repeats them every round trip):
        # not resent within the interval, then at most three times in all.
        lost = [original.sequence_number]
        nack.lost = lost
        await sender._handle_rtcp_packet(nack)
        assert len(sent) == count + 1
        for _ in range(4):
            await asyncio.sleep(0.11)
            await sender._handle_rtcp_packet(nack)
        assert len(sent) == count + 3
    finally:
        await pc.close()


async def _forwarding_offer(
    offerer: RTCPeerConnection, answerer: RTCPeerConnection
) -> tuple[ForwardingTrack, RTCRtpSender]:
    """A forwarding track offered by ``offerer`` and answered by ``answerer``, which takes
    SRTP directly (receive_directly); the offerer still has to take the answer."""
    track = ForwardingTrack("video", "v1", 4, request_keyframe=lambda: None)
    sender = offerer.addTransceiver(track, direction="sendonly").sender
    tx.prepare_sender(sender, Packer(on_remb=lambda bitrate: None), lambda: None, "s", track)
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    transport.receive_directly(answerer)
    return track, sender


async def test_forwarding_track_sends_straight_to_the_connected_pair(netns) -> None:
    # Two aiortc peers over host candidates (inside the namespace): ForwardingTrack's
    # direct path (SRTP, then the nominated ICE pair's socket) reaches the remote receiver.
    offerer = RTCPeerConnection(rtc_configuration(load_settings().ice))
    answerer = RTCPeerConnection(rtc_configuration(load_settings().ice))
    frames: list[EncodedFrame] = []

    @answerer.on("track")
    def on_track(remote: Any) -> None:
        receiver = next(r for r in answerer.getReceivers() if r.track is remote)
        assembler = FrameAssembler("VP8", "video", 90000)

        def on_packet(packet: RtpPacket, start: bool) -> None:
            frames.extend(
                assembler.push(
                    packet.sequence_number, packet.timestamp, bool(packet.marker), packet.payload
                )
            )

        ReceiverTap(receiver, "video", 0.3, on_packet)

    try:
        track, sender = await _forwarding_offer(offerer, answerer)
        # The answerer takes SRTP straight from its socket, not through aioice's queue.
        dtls = answerer.getReceivers()[0].transport
        connection = dtls.transport._connection
        queued: list[bytes] = []
        put = connection._queue.put_nowait

        def count(item: Any) -> None:
            if item is not None and 127 < item[0][0] < 192:
                queued.append(item[0])
            put(item)

        connection._queue.put_nowait = count
        await offerer.setRemoteDescription(answerer.localDescription)
        async with asyncio.timeout(10):
            while not (tx.sender_running(sender) and track.ready):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert "_send_rtp" not in vars(sender.transport)  # the direct path is taken
        received_before = dtls._RTCDtlsTransport__rx_packets
        seq = 7
        for index, frame in enumerate([KEYFRAME, INTERFRAME, INTERFRAME, KEYFRAME]):
            payloads = Vp8Encoder._packetize(frame, index)
            for i, payload in enumerate(payloads):
                packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=index * 3000)
                packet.marker = int(i == len(payloads) - 1)
                packet.payload = payload
                track.forward(packet, i == 0 and frame is KEYFRAME, Arrival.now())
                seq += 1
        async with asyncio.timeout(5):
            while len(frames) < 4:  # noqa: ASYNC110 - complete at each marker packet
                await asyncio.sleep(0.02)
        assert [f.data for f in frames] == [KEYFRAME, INTERFRAME, INTERFRAME, KEYFRAME]
        assert track.forwarded == 4 and track.depth == 0
        assert connection._nominated[1].protocol._sfu_direct
        assert dtls._RTCDtlsTransport__rx_packets - received_before >= seq - 7
        assert queued == []
        stats = [s for s in (await sender.getStats()).values() if s.type == "transport"]
        assert stats[0].packetsSent >= seq - 7  # aiortc's transport counters kept
    finally:
        await offerer.close()
        await answerer.close()


async def test_sender_running_sees_the_rtp_loop(netns) -> None:
    # Two aiortc peers over loopback-free host candidates (inside the namespace).
    offerer = RTCPeerConnection(rtc_configuration(load_settings().ice))
    answerer = RTCPeerConnection(rtc_configuration(load_settings().ice))
    try:
        track = ForwardingTrack("audio", "a1", 4, request_keyframe=lambda: None)
        sender = offerer.addTransceiver(track, direction="sendonly").sender
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
        async with asyncio.timeout(10):
            while not tx.sender_running(sender):  # noqa: ASYNC110 - no event to await
                await asyncio.sleep(0.05)
    finally:
        await offerer.close()
        await answerer.close()
    assert tx.sender_running(sender) is False


RECEIVE_EXTENSIONS = [
    *EXTENSIONS,
    RTCRtpHeaderExtensionParameters(id=4, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
]


async def _receiving(kind: str, codec: RTCRtpCodecParameters) -> tuple[Any, Any, ReceiverTap, dict]:
    """A receiver with a forwarding tap, as the SFU installs it; what it did is in the dict."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver = pc.addTransceiver(kind, direction="recvonly").receiver
    receiver._track = RemoteStreamTrack(kind=kind)
    seen: dict[str, list] = {"packets": [], "nacks": [], "rtcp": []}
    tap = ReceiverTap(
        receiver,
        kind,
        jitter_timeout=1.0,
        on_packet=lambda packet, start: seen["packets"].append(
            (packet.sequence_number, packet.timestamp, packet.marker, packet.payload, start)
        ),
    )

    async def nack(media_ssrc: int, lost: list[int]) -> None:
        seen["nacks"].append(list(lost))

    async def rtcp(packet: Any) -> None:
        seen["rtcp"].append(bytes(packet))

    receiver._send_rtcp_nack = nack
    receiver._send_rtcp = rtcp
    await receiver.receive(
        RTCRtpReceiveParameters(
            codecs=[codec, RTX] if kind == "video" else [codec],
            headerExtensions=RECEIVE_EXTENSIONS,
            encodings=[
                RTCRtpDecodingParameters(
                    ssrc=1234,
                    payloadType=codec.payloadType,
                    rtx=RTCRtpRtxParameters(ssrc=5678) if kind == "video" else None,
                )
            ],
            rtcp=RTCRtcpParameters(ssrc=4321),
        )
    )
    receiver._RTCRtpReceiver__rtcp_ssrc = 4321  # aiortc sets it when the transport starts
    return pc, receiver, tap, seen


async def test_fast_receive_path_does_what_aiortc_does() -> None:
    # The same packets, as bytes, through aiortc's receive path and through ReceiverTap's
    # fast path (which receive_directly takes once aiortc has seen the stream): the same
    # packets forwarded, keyframe starts, NACKs, REMB feedback and RTCP statistics.
    ext_map = HeaderExtensionsMap()
    ext_map.configure(RTCRtpReceiveParameters(headerExtensions=RECEIVE_EXTENSIONS))
    packets = rtp_packets([KEYFRAME, INTERFRAME, INTERFRAME, KEYFRAME] + [INTERFRAME] * 300)
    for i, packet in enumerate(packets):
        packet.extensions.mid = "0"
        packet.extensions.abs_send_time = (i * 2621) & 0xFFFFFF  # 10 ms apart
    del packets[20]  # lost: a NACK
    wire = [(p.serialize(ext_map), 1000 + 10 * i) for i, p in enumerate(packets)]
    aiortc_side = await _receiving("video", VP8)
    fast_side = await _receiving("video", VP8)
    try:
        for data, arrival_ms in wire:
            receiver = aiortc_side[1]
            await receiver.transport._handle_rtp_data(data, arrival_time_ms=arrival_ms)
        receiver = fast_side[1]
        await receiver.transport._handle_rtp_data(wire[0][0], arrival_time_ms=wire[0][1])
        fast = receiver.transport._sfu_fast[1234]  # what receive_directly looks up
        assert all([fast(data, arrival_ms) for data, arrival_ms in wire[1:]])
        mine, theirs = fast_side[3], aiortc_side[3]
        assert mine["packets"] == theirs["packets"] and len(mine["packets"]) == len(packets)
        assert [p[4] for p in mine["packets"]].count(True) == 2  # the two keyframes
        assert mine["nacks"] == theirs["nacks"] == [[packets[19].sequence_number + 1]]
        assert mine["rtcp"] == theirs["rtcp"] and mine["rtcp"], "no REMB from either"
        streams = [s[1]._RTCRtpReceiver__remote_streams[1234] for s in (fast_side, aiortc_side)]
        for name in ("packets_received", "base_seq", "max_seq", "cycles", "_last_timestamp"):
            assert getattr(streams[0], name) == getattr(streams[1], name), name
        # What aiortc's full path must take is refused without a change: a retransmission
        # (another payload type), padding, and anything while frames are wanted.
        before = len(mine["packets"])
        rtx = wrap_rtx(packets[19], payload_type=98, sequence_number=1, ssrc=1234)
        assert not fast(rtx.serialize(ext_map), 9000)
        padded = RtpPacket(payload_type=97, sequence_number=9, ssrc=1234, payload=b"\x10")
        padded.padding_size = 4
        assert not fast(padded.serialize(ext_map), 9000)
        # Malformed extension elements (truncated, or the wrong size for abs-send-time or
        # the audio level) are aiortc's parser's to refuse.
        good = wire[-1][0]
        assert good[12:16] == b"\xbe\xde\x00\x02"  # mid (id 1) then abs-send-time (id 3)
        mid_size = (good[16] & 0x0F) + 1
        at = 16 + 1 + mid_size
        for element in (b"\x34", bytes([0x31]) + bytes(1), bytes([0x41]) + bytes(2)):
            bad = good[:at] + element + good[at + len(element) :]
            assert not fast(bad, 9000), element
        truncated = good[:12] + b"\xbe\xde\x00\x01" + b"\x1f\x00\x00\x00" + good[24:]
        assert not fast(truncated, 9000)
        assert len(mine["packets"]) == before and streams[0].packets_received == len(packets)
    finally:
        await aiortc_side[0].close()
        await fast_side[0].close()


async def test_fast_receive_path_reads_the_audio_level() -> None:
    ext_map = HeaderExtensionsMap()
    ext_map.configure(RTCRtpReceiveParameters(headerExtensions=RECEIVE_EXTENSIONS))
    opus = RTCRtpCodecParameters(
        mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111
    )
    pc, receiver, tap, seen = await _receiving("audio", opus)
    try:
        wire = []
        for i in range(3):
            packet = RtpPacket(payload_type=111, sequence_number=i, timestamp=960 * i, ssrc=1234)
            packet.payload = b"\xfc" + bytes(40)
            packet.extensions.audio_level = (True, 30 + i)
            wire.append(packet.serialize(ext_map))
        await receiver.transport._handle_rtp_data(wire[0], arrival_time_ms=0)
        assert tap.audio_level == (True, 30)
        fast = receiver.transport._sfu_fast[1234]
        assert fast(wire[1], 20) and fast(wire[2], 40)
        assert tap.audio_level == (True, 32)
        assert [p[0] for p in seen["packets"]] == [0, 1, 2] and all(p[4] for p in seen["packets"])
    finally:
        await pc.close()


async def test_fast_receive_path_over_a_real_connection(netns) -> None:
    # Over a real connection (inside the namespace), receive_directly hands the stream's
    # packets to the tap's fast path once aiortc has seen the first: every packet reaches
    # forwarding, in order, the keyframes marked, and aiortc's statistics count them all.
    offerer = RTCPeerConnection(rtc_configuration(load_settings().ice))
    answerer = RTCPeerConnection(rtc_configuration(load_settings().ice))
    got: list[tuple[int, bool]] = []
    fast_calls: list[int] = []
    taps: list[ReceiverTap] = []

    @answerer.on("track")
    def on_track(remote: Any) -> None:
        receiver = next(r for r in answerer.getReceivers() if r.track is remote)
        tap = ReceiverTap(
            receiver,
            "video",
            jitter_timeout=0.3,
            on_packet=lambda packet, start: got.append((packet.sequence_number, start)),
        )
        fast = tap._fast

        def counting(data: bytes, arrival_ms: int) -> bool:
            taken = fast(data, arrival_ms)
            fast_calls.append(taken)
            return taken

        tap._fast = counting  # type: ignore[method-assign]
        taps.append(tap)

    try:
        track, sender = await _forwarding_offer(offerer, answerer)
        await offerer.setRemoteDescription(answerer.localDescription)
        async with asyncio.timeout(10):
            while not (tx.sender_running(sender) and track.ready):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        seq = 7
        for index, frame in enumerate([KEYFRAME, INTERFRAME, INTERFRAME, KEYFRAME]):
            for i, payload in enumerate(Vp8Encoder._packetize(frame, index)):
                packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=index * 3000)
                packet.marker = i == len(Vp8Encoder._packetize(frame, index)) - 1
                packet.payload = payload
                track.forward(packet, i == 0 and frame is KEYFRAME, Arrival.now())
                seq += 1
            await asyncio.sleep(0.02)
        async with asyncio.timeout(5):
            while len(got) < seq - 7:  # noqa: ASYNC110 - no event to await
                await asyncio.sleep(0.02)
        numbers = [n for n, _ in got]
        assert numbers == [(numbers[0] + i) & 0xFFFF for i in range(seq - 7)]
        assert [numbers.index(n) for n, start in got if start] == [0, len(got) - 2]  # 2 keyframes
        assert sum(fast_calls) >= seq - 7 - 1  # all but the first took the fast path
        receiver = taps[0].receiver
        stats = receiver._RTCRtpReceiver__remote_streams[taps[0].ssrc]
        assert stats.packets_received == seq - 7
    finally:
        await offerer.close()
        await answerer.close()


async def test_forwarding_sender_reports_follow_the_rtcp_clock() -> None:
    # A forwarding sender's RTCP sender reports go out when the room's RtcpClock ticks
    # (not on a timer of the sender's own), with what ForwardingTrack counted; a BYE ends
    # them and the sender still stops.
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    track = ForwardingTrack("video", "t1", 16, request_keyframe=lambda: None)
    sender = pc.addTransceiver(track, direction="sendonly").sender
    clock = tx.RtcpClock()
    packer = Packer(on_remb=lambda bitrate: None)
    tx.prepare_sender(sender, packer, lambda: None, "s", track, clock)
    sent: list[list[Any]] = []

    async def capture(data: bytes) -> None:
        if is_rtcp(data):
            sent.append(RtcpPacket.parse(data))

    sender.transport._send_rtp = capture
    await sender.send(
        RTCRtpSendParameters(
            codecs=[VP8], headerExtensions=EXTENSIONS, muxId="0", rtcp=RTCRtcpParameters(cname="c1")
        )
    )
    try:
        await asyncio.sleep(1.6)  # aiortc's own loop would have sent a report by now
        assert sent == []
        for seq, marker in ((1, 0), (2, 1)):
            packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=3000, marker=marker)
            packet.payload = KEYFRAME[:100]
            track.forward(packet, seq == 1, Arrival.now())
        await asyncio.sleep(0.05)
        clock.tick()
        await asyncio.sleep(0.05)
        assert len(sent) == 1
        report, sdes = sent[0]
        assert isinstance(report, RtcpSrPacket) and report.ssrc == sender._ssrc
        assert report.sender_info.packet_count == 2 and report.sender_info.octet_count == 200
        assert sdes.chunks[0].items == [(1, b"c1")]
        clock.tick()
        await asyncio.sleep(0.05)
        assert len(sent) == 2
    finally:
        async with asyncio.timeout(5):
            await sender.stop()
        await pc.close()
    assert isinstance(sent[-1][0], RtcpByePacket)


def test_link_emulator_takes_every_bundled_track_off_the_direct_path() -> None:
    # Several forwarding tracks share one transport (BUNDLE): once a LinkEmulator wraps it,
    # none of them may send past it.
    async def check() -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            tracks = [
                ForwardingTrack(k, k, 4, request_keyframe=lambda: None) for k in ("audio", "video")
            ]
            for track in tracks:
                pc.addTransceiver(track, direction="sendonly")
                track._direct = True  # as run() leaves it once the sender runs
            LinkEmulator(delay=0.01).attach(pc)
            assert [t._direct for t in tracks] == [False, False]
        finally:
            await pc.close()

    asyncio.run(check())
