"""A producer: one track a participant publishes, as the router forwards it (mediasoup's
word).

Its receiver's packets come straight here (:meth:`Producer.receive`, routed by the
:class:`~sfu.media.aiortc.receiver.ReceiverTap`), and go on, in one loop, to every
consumer (a subscriber's copy) and every observer (the recorder): the same packets, the
same pass. It keeps the keyframe state the router acts on.

A simulcast producer (a camera published in several encodings, lowest first) has
:attr:`Producer.layers`; its packets come with their layer (:meth:`Producer.receive_layer`)
and each consumer gets one layer: the one it has (``Consumer.layer``) until a keyframe of
the one chosen for it (``Consumer.target``, set by the router) arrives, where it switches.
Observers get the best layer (the highest active), switched the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiortc.rtp import RtpPacket

from .aiortc.receiver import ReceiverTap
from .consumer import Consumer
from .layer_selector import Layer
from .rtp import vp8
from .rtp.arrival import Arrival
from .rtp.codecs import vp8_size

# A layer without packets for this long is paused (the publisher stopped sending it).
LAYER_SILENCE = 1.0


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

    def switched(self, producer: Producer) -> None:
        """The next packet starts another simulcast layer (at its keyframe)."""


@dataclass(eq=False)
class LayerState:
    """One encoding of a simulcast producer, as measured."""

    rid: str
    max_bitrate: int  # bit/s, configured (sfu.simulcast_layers)
    octets: int = 0  # payload bytes since the last measure()
    bitrate: int = 0  # bit/s over the last measurement
    last_packet: float = float("-inf")  # monotonic
    width: int = 0  # from its latest keyframe
    height: int = 0
    _measured_at: float = field(default_factory=time.monotonic)

    def measure(self, now: float) -> None:
        elapsed = now - self._measured_at
        if elapsed >= 0.5:
            rate = int(self.octets * 8 / elapsed)
            self.bitrate = rate if self.bitrate == 0 else (self.bitrate + rate) // 2
            self.octets = 0
            self._measured_at = now

    def active(self, now: float) -> bool:
        return now - self.last_packet < LAYER_SILENCE

    def as_layer(self, now: float) -> Layer:
        active = self.active(now)
        bitrate = self.bitrate if active and self.bitrate else self.max_bitrate
        return Layer(self.rid, self.height, bitrate, active)


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
    layers: list[LayerState] = field(default_factory=list)
    # The layer observers get (None: none yet), and the one they are to get.
    observer_layer: int | None = None
    observer_target: int | None = None

    @property
    def sender_report(self) -> tuple[float, int] | None:
        """The publisher's last sender report of what observers get."""
        if self.layers and self.observer_layer is not None:
            return self.tap.layer_sender_report(self.observer_layer)
        return self.tap.sender_report

    def keyframe_layers(self) -> list[int] | None:
        """The simulcast layers a keyframe is wanted on: those consumers wait to switch
        to or to start on, and the observers' (None: not simulcast, or none known)."""
        if not self.layers:
            return None
        wanted = {
            o.target
            for o in self.consumers.values()
            if o.target is not None and (o.target != o.layer or o.track.waiting_keyframe)
        }
        if self.observers and self.observer_target is not None:
            wanted.add(self.observer_target)
        return sorted(wanted) or None

    def best_layer(self, now: float) -> int | None:
        """The highest layer whose packets arrive now."""
        active = [i for i, layer in enumerate(self.layers) if layer.active(now)]
        return active[-1] if active else None

    def receive_layer(self, index: int, packet: RtpPacket, starts_keyframe: bool) -> None:
        """One packet of simulcast layer ``index``: to the consumers and observers that get
        that layer, or switch to it here (at its keyframe)."""
        self.on_arrival()
        layer = self.layers[index]
        layer.octets += len(packet.payload)
        layer.last_packet = now = time.monotonic()
        if starts_keyframe:
            descriptor = vp8.parse(packet.payload)
            size = vp8_size(packet.payload[descriptor.size :]) if descriptor else None
            if size is not None:
                layer.width, layer.height = size
        arrival: Arrival | None = None
        for consumer in self.consumers.values():
            if consumer.layer != index:
                if consumer.target != index or not starts_keyframe or consumer.paused:
                    continue
                consumer.layer = index  # its keyframe: the consumer switches here
                consumer.switched_at = now
                consumer.track.switch_layer()
            elif consumer.paused:
                continue
            if arrival is None:
                arrival = Arrival.now()
            consumer.track.forward(packet, starts_keyframe, arrival)
        if self.observers:
            if self.observer_layer != index:
                if self.observer_target != index or not starts_keyframe:
                    return
                self.observer_layer = index
                for observer in self.observers:
                    observer.switched(self)
            self.frames += packet.marker
            self.keyframes += starts_keyframe
            for observer in self.observers:
                observer.on_packet(self, packet, starts_keyframe)
        elif index == self.observer_target:
            self.frames += packet.marker
            self.keyframes += starts_keyframe

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
                if not consumer.paused:
                    consumer.track.forward(packet, starts_keyframe, arrival)
        for observer in self.observers:
            observer.on_packet(self, packet, starts_keyframe)

    def describe(self) -> dict[str, Any]:
        now = time.monotonic()
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
            "layers": [
                {
                    "rid": layer.rid,
                    "active": layer.active(now),
                    "bitrate": layer.bitrate,
                    "width": layer.width,
                    "height": layer.height,
                }
                for layer in self.layers
            ],
        }
