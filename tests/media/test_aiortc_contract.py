"""The aiortc internals sfu/media/forwarding.py relies on are still there and behave.

If one of these fails after an aiortc upgrade, the SFU would silently decode, re-encode,
drop keyframe requests or stall: fix forwarding.py before relaxing the pin in pyproject.
These tests touch aiortc's private API on purpose, to check it.
"""

from __future__ import annotations

import asyncio
import queue

import aioice.ice
import aiortc
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
from aiortc.codecs import depayload
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpReceiveParameters,
)
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RtcpPsfbPacket,
    RtpPacket,
    pack_remb_fci,
)

from sfu.media import forwarding
from sfu.media.forwarding import EncodedFrame, ForwardingTrack, Packer, ReceiverTap
from sfu.media.ice import rtc_configuration
from sfu.settings import load_settings

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)
# A VP8 key frame header (frame tag with bit 0 clear, start code 9d 01 2a), then filler.
KEYFRAME = b"\x10\x02\x00\x9d\x01\x2a\x40\x01\xf0\x00" + bytes(range(256)) * 8
INTERFRAME = b"\x31\x02\x00" + bytes(range(200))


def test_pinned_version() -> None:
    assert aiortc.__version__.startswith("1.16."), "re-check forwarding.py for this aiortc"


def test_packetizers_round_trip() -> None:
    payloads = Vp8Encoder._packetize(KEYFRAME, 5)
    assert len(payloads) > 1
    assert b"".join(depayload(VP8, p) for p in payloads) == KEYFRAME
    h264 = b"\x00\x00\x00\x01\x67\x42\x00\x1f" + b"\x00\x00\x00\x01\x65" + bytes(3000)
    packets = H264Encoder._packetize(H264Encoder._split_bitstream(h264))
    h264_codec = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=99)
    data = b"".join(depayload(h264_codec, p) for p in packets)
    assert forwarding.is_keyframe("H264", data)
    assert data.replace(b"\x00\x00\x00\x01", b"") == h264.replace(b"\x00\x00\x00\x01", b"")


def test_keyframe_detection() -> None:
    assert forwarding.is_keyframe("VP8", KEYFRAME)
    assert not forwarding.is_keyframe("VP8", INTERFRAME)
    assert not forwarding.is_keyframe("H264", b"\x00\x00\x00\x01\x41" + bytes(10))


async def test_sender_uses_the_packer_and_routes_feedback() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        requests: list[int] = []
        rembs: list[int] = []
        track = ForwardingTrack("video", "t1", 4, on_overflow=lambda: None)
        transceiver = pc.addTransceiver(track, direction="sendonly")
        sender = transceiver.sender
        assert forwarding.sender_packer(sender) is None  # aiortc creates it lazily
        assert forwarding.sender_running(sender) is False  # no RTP loop before DTLS
        packer = Packer("VP8", on_remb=rembs.append)
        forwarding.prepare_sender(sender, packer, lambda: requests.append(1), "alice")

        # The send loop takes a pre-encoded frame to encoder.pack(), never encode().
        track.push(EncodedFrame(KEYFRAME, 3000, "video", "VP8", 90000, True))
        encoded = await sender._next_encoded_frame(VP8)
        assert packer.packed == 1
        assert encoded.timestamp == 3000
        assert b"".join(depayload(VP8, p) for p in encoded.payloads) == KEYFRAME
        assert forwarding.sender_packer(sender) is packer
        assert forwarding.FORWARDING_ENCODES == 0

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

        # A stopped forwarding track ends the sender's recv() with MediaStreamError.
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


async def test_receiver_tap_gets_frames_and_skips_stalls() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver = pc.addTransceiver("video", direction="recvonly").receiver
    try:
        assert isinstance(receiver._RTCRtpReceiver__decoder_queue, queue.Queue)
        assert receiver._RTCRtpReceiver__remote_bitrate_estimator is not None
        frames: list[EncodedFrame] = []
        losses: list[int] = []
        # aiortc sets the track in setRemoteDescription; this test has no remote peer.
        receiver._track = RemoteStreamTrack(kind="video")
        tap = ReceiverTap(
            receiver,
            "video",
            on_frame=frames.append,
            on_picture_loss=lambda: losses.append(1),
            jitter_timeout=0.2,
        )
        tap.cap_remb(lambda: 100_000)
        await receiver.receive(
            RTCRtpReceiveParameters(
                codecs=[VP8], encodings=[RTCRtpDecodingParameters(ssrc=1234, payloadType=97)]
            )
        )
        # A frame is released when the next one starts, encoded bytes unchanged.
        packets = rtp_packets([KEYFRAME, INTERFRAME, INTERFRAME, KEYFRAME, INTERFRAME])
        for packet in packets[:-2]:
            await receiver._handle_rtp_packet(packet, arrival_time_ms=0)
        assert [f.data for f in frames] == [KEYFRAME, INTERFRAME, INTERFRAME]
        assert [f.keyframe for f in frames] == [True, False, False]
        assert [f.timestamp for f in frames] == [0, 3000, 6000]
        assert tap.ssrc == 1234
        assert losses == []

        # A packet that never comes: after jitter_timeout the buffer is skipped, not held.
        later = rtp_packets([INTERFRAME] * 40, first_seq=packets[-1].sequence_number + 1)
        del later[0]
        for packet in later:
            for p in (packet,):
                p.timestamp += 20 * 3000
            await receiver._handle_rtp_packet(packet, arrival_time_ms=0)
            await asyncio.sleep(0.01)
        assert losses, "the stall was not detected"
        assert tap.stalls >= 1
        assert len(frames) > 3, "frames after the skip were not released"
        released = len(frames)
        forwarding.reset_jitter_buffer(receiver)
        assert receiver._RTCRtpReceiver__jitter_buffer._origin is None

        # aiortc's own PLI (e.g. on jitter buffer overflow) is reported as a loss.
        await receiver._send_rtcp_pli(1234)
        assert len(losses) >= 2
        assert len(frames) == released
    finally:
        await pc.close()
    # Stopping the receiver ends aiortc's decoder thread (it waited on the tap's queue).
    assert not any(t.name == "video-decoder" and t.is_alive() for t in _threads())


def _threads() -> list:
    import threading

    return threading.enumerate()


def test_host_address_hook_is_used_by_aioice() -> None:
    source = aioice.ice.Connection.gather_candidates.__code__.co_names
    assert "get_host_addresses" in source
    forwarding.pin_host_addresses(["10.213.0.1"])
    try:
        assert aioice.ice.get_host_addresses(True, False) == ["10.213.0.1"]
    finally:
        forwarding.pin_host_addresses([])


@pytest.mark.webrtc
async def test_pinned_host_addresses_are_the_only_candidates(netns) -> None:
    forwarding.pin_host_addresses(["10.213.0.2"])
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
        forwarding.pin_host_addresses([])
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
    # Each hook in forwarding.py replaces an attribute of one object; aiortc must still
    # look these up through ``self`` at call time, at these call sites.
    from aiortc.rtcdtlstransport import RTCDtlsTransport
    from aiortc.rtcrtpreceiver import RTCRtpReceiver

    def names(function: object) -> set[str]:
        return set(function.__code__.co_names)  # type: ignore[attr-defined]

    assert {"_handle_rtcp_data", "_handle_rtp_data"} <= names(RTCDtlsTransport._recv_next)
    assert "_handle_rtp_packet" in names(RTCDtlsTransport._handle_rtp_data)
    assert "_send_rtcp_pli" in names(RTCRtpReceiver._handle_rtp_packet)
    assert "_send_keyframe" in names(RTCRtpSender._handle_rtcp_packet)
    assert "target_bitrate" in names(RTCRtpSender._handle_rtcp_packet)
    assert "pack" in names(RTCRtpSender._next_encoded_frame)
    assert "_send_rtp" in names(RTCRtpSender._run_rtp)


async def test_sender_running_sees_the_rtp_loop(netns) -> None:
    # Two aiortc peers over loopback-free host candidates (inside the namespace).
    offerer = RTCPeerConnection(rtc_configuration(load_settings().ice))
    answerer = RTCPeerConnection(rtc_configuration(load_settings().ice))
    try:
        track = ForwardingTrack("audio", "a1", 4, on_overflow=lambda: None)
        sender = offerer.addTransceiver(track, direction="sendonly").sender
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
        async with asyncio.timeout(10):
            while not forwarding.sender_running(sender):  # noqa: ASYNC110 - no event to await
                await asyncio.sleep(0.05)
    finally:
        await offerer.close()
        await answerer.close()
    assert forwarding.sender_running(sender) is False
