"""Which simulcast layer a subscriber gets: a pure function of what is known about it.

Inputs, as LiveKit's ``streamallocator`` and mediasoup's ``SimulcastConsumer`` weigh them:
the publisher's layers (low to high, each with its size, bitrate and whether packets are
arriving now), the subscriber's downlink estimate, the size at which its app shows the tile
(and whether it is visible at all), and the subscriber's own preference for the track.

- A hidden tile gets nothing: its consumer costs neither bandwidth nor CPU.
- The tile size caps the layer: the smallest layer at least as tall as the tile (in device
  pixels) is enough; a larger one would be scaled down by the browser.
- ``low`` caps at the lowest layer ("low bandwidth mode").
- The estimate picks the highest layer under the caps that fits in it. Going up needs
  ``UP_MARGIN`` of room more than the layer's bitrate, going down happens as soon as the
  layer does not fit: an estimate that hovers at a layer's bitrate does not flip the
  subscriber between two layers with every report.
- Temporal layers before spatial ones: layers and their temporal layers form one ladder,
  spatial first (f all, f up to TID 1, f TID 0 only, h all, ...), as mediasoup's and
  LiveKit's consumers order them. Going down, the current layer's upper temporal layers go
  first (at once, no keyframe needed), then the next layer down. A new consumer, and any
  layer other than the current one, is taken only whole (except the lowest: when not even
  it fits, it is kept with temporal layers dropped: a picture that keeps moving).
- A temporal layer's share of its encoding's bitrate is libwebrtc's allocation for three
  temporal layers (``simulcast_rate_allocator.cc``: TID 0 40 %, TID 0-1 60 %); it is not
  measured per temporal layer, which would mean parsing every packet's descriptor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# "probing" and "forced" are the router's (a trial of the next layer, the test hook).
Reason = Literal[
    "best", "bandwidth", "tile", "preference", "hidden", "unavailable", "probing", "forced"
]
Preference = Literal["auto", "low"]

UP_MARGIN = 1.15
ALL_TEMPORAL = 0xFF  # every temporal layer
BASE_TEMPORAL = 0
# Each temporal limit's share of the encoding's bitrate, highest first.
TEMPORAL_SHARES = ((ALL_TEMPORAL, 1.0), (1, 0.6), (BASE_TEMPORAL, 0.4))


def temporal_share(temporal: int) -> float:
    """The share of an encoding's bitrate its temporal layers up to ``temporal`` carry."""
    return next((share for limit, share in TEMPORAL_SHARES if temporal >= limit), 0.4)


@dataclass(frozen=True, slots=True)
class Layer:
    """One of the publisher's encodings (a simulcast layer)."""

    rid: str
    height: int  # pixels (0: not known yet)
    bitrate: int  # bit/s: measured, or the configured maximum until measured
    active: bool = True  # packets arrive now (a publisher pauses layers it cannot afford)


@dataclass(frozen=True, slots=True)
class View:
    """How the subscriber's app shows the tile (reported by the app)."""

    height: int  # device pixels (CSS pixels x devicePixelRatio)
    visible: bool = True


@dataclass(frozen=True, slots=True)
class Choice:
    """The layer to forward (index into the layers, None: none) and why."""

    spatial: int | None
    temporal: int
    reason: Reason


def choose(
    layers: list[Layer],
    *,
    estimate: int | None = None,
    view: View | None = None,
    preference: Preference = "auto",
    current: int | None = None,
    temporal: int = ALL_TEMPORAL,
) -> Choice:
    """The layer for one subscriber now; ``current`` and ``temporal`` are what it gets (for
    hysteresis, and to drop its temporal layers before the layer)."""
    if view is not None and not view.visible:
        return Choice(None, ALL_TEMPORAL, "hidden")
    usable = [i for i, layer in enumerate(layers) if layer.active]
    if not usable:
        return Choice(None, ALL_TEMPORAL, "unavailable")
    top = usable[-1]
    reason: Reason = "best"
    if view is not None and view.height > 0:
        enough = next((i for i in usable if layers[i].height >= view.height), None)
        if enough is not None and enough < top:
            top, reason = enough, "tile"
    if preference == "low" and usable[0] < top:
        top, reason = usable[0], "preference"
    if estimate is None:
        return Choice(top, ALL_TEMPORAL, reason)
    lowest = usable[0]
    for i in reversed([i for i in usable if i <= top]):
        limits = TEMPORAL_SHARES if i in (current, lowest) else TEMPORAL_SHARES[:1]
        for limit, share in limits:
            up = current is None or i > current or (i == current and limit > temporal)
            if layers[i].bitrate * share * (UP_MARGIN if up else 1.0) <= estimate:
                whole = i == top and limit == ALL_TEMPORAL
                return Choice(i, limit, reason if whole else "bandwidth")
    return Choice(lowest, BASE_TEMPORAL, "bandwidth")
