"""ForwardingTrack's RTP arithmetic over long streams and losses, without a network.

The sender's transport is a stand-in with the attributes the direct send path reads (a
relayed ICE pair's transport has only ``sendto``, like aioice's TurnTransport); everything
that needs a real connection is in test_forwarding.py and test_aiortc_contract.py.
"""

from __future__ import annotations

import asyncio
import struct
from types import SimpleNamespace

from aiortc.rtcdtlstransport import State
from aiortc.rtp import RtpPacket

from sfu.media.aiortc.sender import ForwardingTrack
from sfu.media.rtp.arrival import Arrival


class RelayTransport:
    """What a TURN-relayed pair's transport offers: ``sendto`` only."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append(data)


def ready_track(kind: str) -> tuple[ForwardingTrack, RelayTransport]:
    track = ForwardingTrack(kind, "t", 8, request_keyframe=lambda: None)
    relay = RelayTransport()
    track.sender = SimpleNamespace()  # type: ignore[assignment]
    track._dtls = SimpleNamespace(
        _state=State.CONNECTED,
        _tx_srtp=SimpleNamespace(protect=lambda data: data),
        _RTCDtlsTransport__tx_bytes=0,
        _RTCDtlsTransport__tx_packets=0,
    )
    pair = SimpleNamespace(protocol=SimpleNamespace(transport=relay), remote_addr=("10.0.0.1", 9))
    track._ice = SimpleNamespace(_nominated={1: pair})
    track.payload_type, track._ssrc = 111, 1234
    track.ready = track._direct = True  # as run() leaves them once the sender runs
    return track, relay


def packet(seq: int, timestamp: int, marker: int = 1, payload: bytes = b"x") -> RtpPacket:
    return RtpPacket(
        payload_type=96,
        marker=marker,
        sequence_number=seq & 0xFFFF,
        timestamp=timestamp & 0xFFFFFFFF,
        payload=payload,
    )


def header(data: bytes) -> tuple[int, int, int, int]:
    """(first byte, sequence number, timestamp, payload type) of a sent packet."""
    first, second, seq, timestamp = struct.unpack("!BBHL", data[:8])
    return first, seq, timestamp, second & 0x7F


def test_hours_of_audio_keep_flowing_across_sequence_wraps() -> None:
    track, relay = ready_track("audio")
    now = Arrival.now()
    start = 60000
    for i in range(3 * 65536):  # about an hour of 20 ms Opus packets
        track.forward(packet(start + i, 960 * i), True, now)
    assert len(relay.sent) == 3 * 65536
    numbers = [header(d)[1] for d in relay.sent]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(numbers, numbers[1:], strict=False))
    assert {header(d)[3] for d in relay.sent} == {111}
    # A late packet a little behind is still sent; the numbers stay the subscriber's.
    track.forward(packet(start + 3 * 65536 - 5, 0), True, now)
    assert header(relay.sent[-1])[1] == (numbers[-1] - 4) & 0xFFFF


def test_a_publisher_whose_numbers_start_over_is_followed() -> None:
    for before, back in ((100, 20000), (20000, 5000), (20000, 1500)):
        track, relay = ready_track("audio")
        now = Arrival.now()
        for i in range(before):
            track.forward(packet(30000 + i, 960 * i), True, now)
        for i in range(100):  # the numbering jumps back
            track.forward(packet(30000 + before - back + i, 960 * (before + i)), True, now)
        numbers = [header(d)[1] for d in relay.sent]
        assert len(numbers) == before + 100, (before, back)
        assert all((b - a) & 0xFFFF == 1 for a, b in zip(numbers, numbers[1:], strict=False))


def test_a_loss_is_padded_only_where_the_subscriber_had_it() -> None:
    now = Arrival.now()
    early, early_sent = ready_track("video")
    late, late_sent = ready_track("video")
    # Keyframe 100-102, then frames of one packet each; 105 never arrives.
    stream = [packet(100, 0, 0), packet(101, 0, 0), packet(102, 0), packet(103, 3000)]
    stream += [packet(104, 6000), packet(106, 12000), packet(107, 15000)]
    for p in stream:
        early.forward(p, p.sequence_number == 100, now)
    late.forward(packet(106, 12000), True, now)  # its stream starts after the hole
    late.forward(packet(107, 15000), True, now)
    sent = len(early_sent.sent)
    early.skip_loss([105])
    late.skip_loss([105])
    # One padding packet fills the hole, with the neighbour's timestamp; then the early
    # subscriber waits for a keyframe, the late one is not disturbed.
    first, seq, timestamp, _ = header(early_sent.sent[sent])
    assert len(early_sent.sent) == sent + 1
    assert first & 0x20 and early_sent.sent[sent][-1] == 1  # padding bit, 1 padding byte
    numbers = [header(d)[1] for d in early_sent.sent[:sent]]
    assert seq == (numbers[4] + 1) & 0xFFFF and seq == (numbers[5] - 1) & 0xFFFF
    assert timestamp == header(early_sent.sent[4])[2]
    assert early.waiting_keyframe and not late.waiting_keyframe
    # (Padding takes every number still missing since the subscriber's start.)
    # The next keyframe continues the early subscriber's numbers without a gap.
    early.forward(packet(108, 18000), False, now)
    early.forward(packet(109, 21000), True, now)
    assert header(early_sent.sent[-1])[1] == (numbers[-1] + 1) & 0xFFFF
    assert len(late_sent.sent) == 2


def test_a_run_of_holes_is_padded_with_the_frame_before() -> None:
    track, relay = ready_track("video")
    now = Arrival.now()
    track.forward(packet(10, 0, 0), True, now)
    track.forward(packet(11, 0), False, now)
    track.forward(packet(12, 3000, 0), False, now)  # 13, 14 lost: the end of this frame
    track.forward(packet(15, 6000), False, now)  # and 16 lost, too late to expire yet
    track.forward(packet(17, 9000), False, now)
    sent = len(relay.sent)
    track.skip_loss([13, 14])
    padding = [header(d) for d in relay.sent[sent:]]
    base = header(relay.sent[0])[1]
    assert [seq for _, seq, _, _ in padding] == [(base + n) & 0xFFFF for n in (3, 4, 6)]
    ts = {seq: timestamp for _, seq, timestamp, _ in map(header, relay.sent[:sent])}
    assert [t for _, _, t, _ in padding] == [ts[(base + 2) & 0xFFFF]] * 2 + [
        ts[(base + 5) & 0xFFFF]
    ]
    assert track.waiting_keyframe


async def test_an_async_ended_listener_does_not_break_stop() -> None:
    """pyee (MediaStreamTrack's base) keeps pending async handlers in ``_waiting``: the
    track's own keyframe flag must not overwrite it."""
    track = ForwardingTrack("video", "t1", 16, request_keyframe=lambda: None)
    heard: list[str] = []

    @track.on("ended")
    async def ended() -> None:
        heard.append("ended")

    track.stop()  # raised AttributeError: 'bool' object has no attribute 'add'
    await asyncio.sleep(0)
    assert heard == ["ended"] and track.readyState == "ended"
    assert track.waiting_keyframe  # the track's own flag is intact
