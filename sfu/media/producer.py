"""A producer: one track a participant publishes, as the router forwards it (mediasoup's
word).

Its receiver's packets come straight here (:meth:`Producer.receive`, routed by the
:class:`~sfu.media.aiortc.receiver.ReceiverTap`), and go on, in one loop, to every
consumer (a subscriber's copy) and every observer (the recorder): the same packets, the
same pass. It keeps the keyframe state the router acts on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiortc.rtp import RtpPacket

from .aiortc.receiver import ReceiverTap
from .consumer import Consumer
from .rtp.arrival import Arrival


class Observer(Protocol):
    """Gets a producer's packets in the router's fan-out, like a consumer (the recorder)."""

    def on_packet(self, producer: Producer, packet: RtpPacket, starts_keyframe: bool) -> None:
        """One packet, as the consumers get it."""

    def lost(self, producer: Producer, seqs: list[int]) -> None:
        """Numbers lost for good (the router's loss tracker gave them up)."""

    def wants_keyframe(self, producer: Producer) -> bool:
        """Whether the observer waits for this producer's next keyframe."""

    def ended(self, producer: Producer) -> None:
        """The producer is gone."""


@dataclass(eq=False)
class Producer:
    """One published track: its receiver, its consumers by subscriber, its observers."""

    id: str
    user_id: str
    mid: str
    kind: str
    source: str
    tap: ReceiverTap
    # Called for every packet before the fan-out (the router's "packets wake the tick").
    on_arrival: Callable[[], None] = lambda: None
    consumers: dict[str, Consumer] = field(default_factory=dict)
    observers: list[Observer] = field(default_factory=list)
    frames: int = 0
    keyframes: int = 0
    keyframe_requests: int = 0
    last_request: float = float("-inf")
    request_pending: bool = False

    def receive(self, packet: RtpPacket, starts_keyframe: bool) -> None:
        """One packet from the publisher, as it arrived: to every consumer and observer."""
        self.on_arrival()
        if self.kind == "audio":
            self.frames += 1
        else:
            self.frames += packet.marker
            self.keyframes += starts_keyframe
        if self.consumers:
            arrival = Arrival.now()
            for consumer in self.consumers.values():
                consumer.track.forward(packet, starts_keyframe, arrival)
        for observer in self.observers:
            observer.on_packet(self, packet, starts_keyframe)

    def describe(self) -> dict[str, Any]:
        return {
            "userId": self.user_id,
            "source": self.source,
            "kind": self.kind,
            "mid": self.mid,
            "frames": self.frames,
            "keyframes": self.keyframes,
            "keyframeRequests": self.keyframe_requests,
            "consumers": len(self.consumers),
            "stalls": self.tap.stalls,
            "lostPackets": self.tap.lost,
        }
