"""A consumer: one producer forwarded to one subscriber (mediasoup's word).

It is one m-line of the subscriber's downlink (an m-line whose consumer ended is taken by
the next consumer of its kind): the :class:`ForwardingTrack` that gates on
keyframes, renumbers (``sfu.media.rtp.seqmap``), keeps the NACK history and sends; the
sender's :class:`Packer` that brings the subscriber's REMB; and the m-line's state. The
producer holds its consumers by subscriber; the subscriber's session holds the same objects
in m-line order: one object, two views, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCRtpTransceiver

from .aiortc.sender import ForwardingTrack, Packer, RtcpClock
from .layer_selector import ALL_TEMPORAL, Preference, Reason, View


@dataclass(eq=False)
class Consumer:
    """One m-line of a subscribe connection: a producer forwarded to this subscriber."""

    producer_id: str
    user_id: str  # the publisher's
    source: str
    kind: str
    track: ForwardingTrack
    packer: Packer
    on_keyframe_request: Callable[[], None]
    stream_id: str
    active: bool = True
    transceiver: RTCRtpTransceiver | None = None
    remb: int | None = None  # the subscriber's latest estimate, bit/s
    rtcp_clock: RtcpClock | None = None
    # The subscriber's answer rejected this m-line (port 0): never forwarded, never retried
    # on this downlink, and the m-line is never reused.
    rejected: bool = False
    # The number of the offer that first made this m-line inactive: once an answer to it
    # (or a later offer) is in, another consumer of the same kind may take the m-line.
    retired: int | None = None
    # What the subscriber's app reports of its tile (sfu-view) and asks for the track.
    view: View | None = None
    preference: Preference = "auto"
    # Nothing is forwarded (its tile is hidden).
    paused: bool = False
    # A simulcast producer's layer forwarded now (None: none yet), the one chosen (the
    # switch happens at its next keyframe), and why it was chosen.
    layer: int | None = None
    target: int | None = None
    reason: Reason = "best"
    switched_at: float = 0.0
    # The last sfu-layer sent: (layer, why, upper temporal layers dropped).
    announced: tuple[int | None, str, bool] | None = None
    temporal_at: float = 0.0  # when the temporal limit (``temporal``) last changed
    raised_at: float = float("-inf")  # the last step up (layer or temporal layers)
    trial_wait: float = 4.0  # seconds before a layer up is tried (layer_choice.TRIAL_WAIT)
    tried_at: float = 0.0  # when the last probe ended
    congested_since: float | None = None  # the estimate is short of the layer since
    # A probe for the next step up (layer_choice.py): the layer and temporal limit, until
    # when, how fast.
    probe_target: int | None = None
    probe_temporal: int = ALL_TEMPORAL
    probe_until: float = 0.0
    probe_rate: int = 0
    probe_sent_at: float = 0.0
    probe_start: int = 0  # the estimate when the probe began, and its lowest since
    probe_low: int = 0
    probe_nacks: int = 0  # the track's NACKs when it began
    nacks_seen: int = 0  # the track's NACK count at the last choice, and when it grew
    last_nack_at: float = 0.0
    rate: int = 0  # bit/s forwarded, over the last measure()
    _octets_seen: int = 0
    _measured_at: float = 0.0

    def describe(self) -> dict[str, Any]:
        assert self.transceiver is not None
        return {
            "mid": self.transceiver.mid,
            "userId": self.user_id,
            "source": self.source,
            "kind": self.kind,
            "trackId": self.track.id,
            "streamId": self.stream_id,
            "active": self.active,
            "rejected": self.rejected,
        }

    def measure(self, now: float) -> None:
        """Updates ``rate`` from the forwarding track's byte count (at most twice a second)."""
        elapsed = now - self._measured_at
        if elapsed < 0.5:
            return
        octets = self.track.octets
        if self._measured_at:
            rate = int((octets - self._octets_seen) * 8 / elapsed)
            self.rate = rate if not self.rate else (self.rate + rate) // 2
        self._octets_seen, self._measured_at = octets, now

    @property
    def temporal(self) -> int:
        """The highest VP8 temporal layer forwarded (layer_selector.ALL_TEMPORAL: all): the
        forwarding track's, which applies it to every packet."""
        return self.track.max_temporal

    @temporal.setter
    def temporal(self, value: int) -> None:
        self.track.max_temporal = value

    def describe_layer(self) -> dict[str, Any]:
        """The layer forwarded, the one chosen, and why (for sfu rooms show)."""
        return {
            "layer": self.layer,
            "targetLayer": self.target,
            "temporalLayer": None if self.temporal == ALL_TEMPORAL else self.temporal,
            "layerReason": self.reason,
        }
