"""How a simulcast consumer's layer follows its subscriber over time (docs/sfu.md#simulcast).

:func:`sfu.media.layer_selector.choose` says which layer fits what is known now; this is the
policy around it, with its state on the :class:`~sfu.media.consumer.Consumer`, called by the
router for each consumer every tick (:func:`decide`, then :func:`apply`):

- The tile and the preference cap at once.
- A subscriber's REMB says at most 1.5x what it receives (libwebrtc), so it shows
  congestion, never room for more. Down: the REMB is short of what the subscriber is sent
  and packets are lost (NACKs in the last ``LOSS_RECENT`` s), or the shortfall is large
  (under ``FAR_SHORT``), held ``CONGESTED_FOR`` s; then the track gets what fits in its
  share of the REMB, the current layer's upper temporal layers first (no keyframe
  needed), then the layer.
- Up: room is tried (``probing``): padding at the step's rate for ``PROBE_SECONDS``
  (:func:`send_probes`, the forwarding track's ``send_probe``), after ``trial_wait``
  seconds (``TRIAL_WAIT``, doubled up to ``TRIAL_WAIT_MAX`` by each failed probe and each
  fall within ``TRIAL_WAIT`` of a rise). The next step up is the current layer's
  temporal layers, then the next layer, whole; taken without a probe when the estimate
  already covers it (layers that cost little).
- A switch chosen waits for its layer's keyframe: the choice holds meanwhile (unless the
  tile or the preference now wants less).
- A layer or temporal limit just taken is kept ``SETTLE`` s while the estimate catches up.
"""

from __future__ import annotations

from .consumer import Consumer
from .layer_selector import (
    ALL_TEMPORAL,
    UP_MARGIN,
    Choice,
    Layer,
    choose,
    temporal_share,
)

# The estimate this far above what the consumer gets shows no congestion.
NO_CONGESTION = 1.3
TRIAL_WAIT = 4.0
TRIAL_WAIT_MAX = 16.0
SETTLE = 2.0
PROBE_SECONDS = 4.0
QUIET = 8.0  # seconds without a NACK: the link is not congested, whatever the REMB says
CONGESTED_FOR = 1.0
LOSS_RECENT = 2.0  # NACKs this recent mean the link is losing packets
FAR_SHORT = 0.6  # an estimate under this share of the cost is congestion even without loss
PROBE_HELD = 0.9  # a probe succeeds if the estimate never fell below this share of its start
MIN_PROBE = 50_000  # bit/s


def cost(layers: list[Layer], spatial: int, temporal: int) -> int:
    """What forwarding ``spatial`` up to temporal layer ``temporal`` costs, bit/s."""
    return int(layers[spatial].bitrate * temporal_share(temporal))


def forced(layers: list[Layer], now: float, period: float) -> Choice:
    """The test hook (``sfu.simulcast_switch_seconds``): every ``period`` seconds the next
    of: each active layer whole, then the top one's base temporal layer only."""
    usable = [i for i, layer in enumerate(layers) if layer.active] or [0]
    steps = [(i, ALL_TEMPORAL) for i in usable] + [(usable[-1], 0)]
    spatial, temporal = steps[int(now / period) % len(steps)]
    return Choice(spatial, temporal, "forced")


def decide(
    consumer: Consumer,
    layers: list[Layer],
    estimate: int | None,
    now: float,
    link: float | None = None,
) -> Choice:
    """One consumer's layer and temporal limit now (the module's docstring).

    ``estimate`` is what the subscriber's REMB leaves for this track (its other tracks
    keeping what they get); ``link`` the REMB over everything forwarded to it now (None:
    this track alone, ``estimate`` over its cost). A link that carries what it is sent is
    not congested however the REMB splits: libwebrtc's REMB is capped at 1.5x what it
    receives, so a subscriber that receives little (cheap pictures, mostly audio) shows
    little room for any one track."""
    free = choose(layers, view=consumer.view, preference=consumer.preference)
    current, temporal = consumer.layer, consumer.temporal
    if free.spatial is None or current is None or not layers[current].active:
        return free
    if free.spatial < current:
        return free  # a smaller tile, a preference: at once
    target = consumer.target
    if target is not None and target != current and target <= free.spatial:
        if layers[target].active:  # a switch waits for its keyframe: keep it
            return Choice(target, temporal, consumer.reason)
    if estimate is None:
        return free
    if now - max(consumer.switched_at, consumer.temporal_at) < SETTLE:
        return Choice(consumer.target, temporal, consumer.reason)
    fits = choose(
        layers,
        estimate=estimate,
        view=consumer.view,
        preference=consumer.preference,
        current=current,
        temporal=temporal,
    )
    # A link short of what it is sent is congested when packets are lost (NACKs) or the
    # shortfall is large: right after an up-switch libwebrtc's REMB lags below the new rate
    # for seconds while nothing is wrong.
    if link is None:
        link = estimate / max(cost(layers, current, temporal), 1)
    lossy = now - consumer.last_nack_at < LOSS_RECENT and link < 1.0
    far_short = link < FAR_SHORT
    lower = fits.spatial is not None and (fits.spatial, fits.temporal) < (current, temporal)
    if lower and (lossy or far_short):
        # Down once the estimate stays short for a second (one low REMB on a busy machine
        # is not congestion).
        if consumer.congested_since is None:
            consumer.congested_since = now
        if now - consumer.congested_since >= CONGESTED_FOR:
            consumer.probe_target = None
            return Choice(fits.spatial, fits.temporal, "bandwidth")
        return Choice(consumer.target, temporal, consumer.reason)
    consumer.congested_since = None
    if consumer.probe_target is not None:
        return _probe_result(consumer, layers, estimate, now)
    if free.spatial > current or temporal < ALL_TEMPORAL:
        # No congestion: the estimate is well above the cost, or (libwebrtc's REMB recovers
        # slowly after congestion) nothing was lost for a while.
        quiet = now - consumer.last_nack_at >= QUIET
        roomy = estimate >= NO_CONGESTION * cost(layers, current, temporal)
        waited = now - max(consumer.switched_at, consumer.tried_at) >= consumer.trial_wait
        if (roomy or quiet) and waited:
            step = _next_step(layers, current, temporal, free.spatial)
            if step is not None and estimate >= UP_MARGIN * cost(layers, *step):
                # The estimate shows room for the step itself (cheap layers: a still
                # picture's): up without a probe.
                whole = step == (free.spatial, ALL_TEMPORAL)
                return Choice(*step, free.reason if whole else "bandwidth")
            if step is not None:
                _start_probe(consumer, layers, step, estimate, now)
                return Choice(current, temporal, "probing")
        return Choice(current, temporal, "bandwidth")
    return Choice(current, temporal, free.reason)


def _next_step(
    layers: list[Layer], current: int, temporal: int, top: int
) -> tuple[int, int] | None:
    """The next rung up: the current layer's temporal layers, else the next active layer."""
    if temporal < ALL_TEMPORAL:
        return current, ALL_TEMPORAL
    above = [i for i in range(current + 1, top + 1) if layers[i].active]
    return (above[0], ALL_TEMPORAL) if above else None


def _start_probe(
    consumer: Consumer, layers: list[Layer], step: tuple[int, int], estimate: int, now: float
) -> None:
    consumer.probe_target, consumer.probe_temporal = step
    consumer.probe_until = now + PROBE_SECONDS
    consumer.probe_sent_at = now
    consumer.probe_start = consumer.probe_low = estimate
    consumer.probe_nacks = consumer.track.nacked
    assert consumer.layer is not None
    more = cost(layers, *step) - cost(layers, consumer.layer, consumer.temporal)
    consumer.probe_rate = max(int(more * UP_MARGIN), MIN_PROBE)


def _probe_result(consumer: Consumer, layers: list[Layer], estimate: int, now: float) -> Choice:
    """While a probe runs the layer stays; when it ends, the next step fits if the link
    carried the probe (the step's rate on top of what it had) without loss (no NACK from
    the subscriber) and without the estimate falling (a queue growing under the probe makes
    libwebrtc's delay-based estimate drop within about a second). Waiting for the estimate
    to *rise* to the next layer would take tens of seconds: after congestion it climbs
    additively."""
    target = consumer.probe_target
    assert target is not None and consumer.layer is not None
    consumer.probe_low = min(consumer.probe_low, estimate)
    if now < consumer.probe_until:
        return Choice(consumer.layer, consumer.temporal, "probing")
    consumer.probe_target = None
    consumer.tried_at = now
    carried = (
        consumer.track.nacked == consumer.probe_nacks
        and consumer.probe_low >= PROBE_HELD * consumer.probe_start
    )
    if target < len(layers) and carried:
        consumer.trial_wait = TRIAL_WAIT
        return Choice(target, consumer.probe_temporal, "probing")
    consumer.trial_wait = min(consumer.trial_wait * 2, TRIAL_WAIT_MAX)
    return Choice(consumer.layer, consumer.temporal, "bandwidth")


def apply(consumer: Consumer, choice: Choice, now: float) -> bool:
    """Makes ``choice`` the consumer's: the layer to switch to at its next keyframe, the
    temporal limit at once. True if a keyframe of a new layer is needed."""
    if choice.spatial is not None and consumer.target is not None:
        was, now_at = (consumer.target, consumer.temporal), (choice.spatial, choice.temporal)
        if now_at > was:
            consumer.raised_at = now
        elif (
            now_at < was and choice.reason == "bandwidth" and now - consumer.raised_at < TRIAL_WAIT
        ):
            # Up, then soon down again: the link did not carry it after all.
            consumer.trial_wait = min(consumer.trial_wait * 2, TRIAL_WAIT_MAX)
    keyframe = False
    if choice.spatial != consumer.target:
        consumer.target = choice.spatial
        keyframe = choice.spatial is not None and choice.spatial != consumer.layer
    if choice.temporal != consumer.temporal:
        consumer.temporal = choice.temporal  # the track's, applied from its next packet
        consumer.temporal_at = now
    consumer.reason = choice.reason
    return keyframe


def send_probes(consumers: list[Consumer], now: float) -> None:
    """Each probing consumer's padding since the last tick."""
    for consumer in consumers:
        if consumer.probe_target is None or now >= consumer.probe_until:
            continue
        if consumer.track.nacked != consumer.probe_nacks:
            consumer.probe_until = now  # loss: the probe failed, stop loading the link
            continue
        elapsed = min(now - consumer.probe_sent_at, 0.25)
        consumer.probe_sent_at = now
        consumer.track.send_probe(int(consumer.probe_rate * elapsed / 8))
