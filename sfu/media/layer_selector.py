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
- When not even the lowest layer fits, the subscriber keeps it (a picture that keeps moving)
  with the upper temporal layers dropped, about half its bitrate.
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
) -> Choice:
    """The layer for one subscriber now; ``current`` is the one it gets (for hysteresis)."""
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
    for i in reversed([i for i in usable if i <= top]):
        need = layers[i].bitrate * (UP_MARGIN if current is None or i > current else 1.0)
        if need <= estimate:
            return Choice(i, ALL_TEMPORAL, reason if i == top else "bandwidth")
    lowest = usable[0]
    temporal = ALL_TEMPORAL if layers[lowest].bitrate <= estimate else BASE_TEMPORAL
    return Choice(lowest, temporal, "bandwidth")
