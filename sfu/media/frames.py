"""An encoded media frame as a publisher sent it: what the recorder and other in-process
consumers receive."""

from __future__ import annotations

import fractions
from dataclasses import dataclass

import av


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
