"""A simulcast consumer's layer over time (sfu/media/layer_choice.py): the tile caps at
once, the estimate brings the consumer down only with loss or a large shortfall held for a
second (its upper temporal layers first, then the layer), and the next step up is probed
before it is taken. Pure: no network; the consumer's track is a real ForwardingTrack that
is never started."""

from __future__ import annotations

from typing import Any

import pytest

from sfu.media import layer_choice
from sfu.media.aiortc.sender import ForwardingTrack, Packer
from sfu.media.consumer import Consumer
from sfu.media.layer_selector import ALL_TEMPORAL, Choice, Layer, View

ALL = ALL_TEMPORAL

H, F = Layer("h", 240, 400_000), Layer("f", 480, 1_000_000)
LAYERS = [H, F]


def consumer(layer: int | None = 1, **state: Any) -> Consumer:
    track = ForwardingTrack("video", "t", 60, request_keyframe=lambda: None)
    c = Consumer("p", "alice", "camera", "video", track, Packer(lambda b: None), lambda: None, "s")
    c.layer = c.target = layer
    for key, value in state.items():
        setattr(c, key, value)
    return c


def choose(c: Consumer, estimate: int | None, now: float) -> tuple[Any, ...]:
    got = layer_choice.decide(c, LAYERS, estimate, now)
    return got.spatial, got.temporal, got.reason


def test_a_new_consumer_takes_the_best_the_tile_allows() -> None:
    assert choose(consumer(None), 50_000, 100.0) == (1, ALL, "best")
    assert choose(consumer(None, view=View(200)), None, 100.0) == (0, ALL, "tile")


def test_a_smaller_tile_moves_down_at_once_even_while_settling() -> None:
    c = consumer(1, switched_at=99.5, view=View(180))
    assert choose(c, 5_000_000, 100.0) == (0, ALL, "tile")


def test_a_layer_just_switched_to_is_kept_while_the_estimate_catches_up() -> None:
    c = consumer(1, switched_at=99.0, reason="probing")
    assert choose(c, 100_000, 100.0) == (1, ALL, "probing")


@pytest.mark.parametrize(
    ("estimate", "nack_ago", "held", "want"),
    [
        (800_000, 1.0, 0.0, (1, ALL, "best")),  # short, lossy, but not for a second yet
        (800_000, 1.0, 1.5, (1, 1, "bandwidth")),  # short and lossy for a second: TID 0-1
        (800_000, 5.0, 1.5, (1, ALL, "best")),  # short without loss: the REMB lags, stay
        (500_000, 5.0, 1.5, (1, 0, "bandwidth")),  # far short (under 60 %): TID 0 only
        (350_000, 5.0, 1.5, (0, 1, "bandwidth")),  # not even that: the lower layer, TID 0-1
        (1_200_000, 1.0, 1.5, (1, ALL, "best")),  # enough
    ],
)
def test_down_only_with_loss_or_a_large_shortfall_held_a_second_temporal_first(
    estimate: int, nack_ago: float, held: float, want: tuple[Any, ...]
) -> None:
    now = 100.0
    c = consumer(1, last_nack_at=now - nack_ago, congested_since=now - held if held else None)
    assert choose(c, estimate, now) == want


def test_a_bigger_layer_is_probed_then_taken_when_the_link_carried_the_probe() -> None:
    c = consumer(0, last_nack_at=0.0, tried_at=0.0)
    assert choose(c, 700_000, 100.0) == (0, ALL, "probing")  # 700k >= 1.3 x 400k: probe
    assert c.probe_target == 1 and c.probe_rate == int(600_000 * 1.15)
    assert choose(c, 690_000, 102.0) == (0, ALL, "probing")  # still probing
    assert choose(c, 900_000, 104.5) == (1, ALL, "probing")  # ended, nothing lost: up
    assert c.probe_target is None and c.trial_wait == 4.0


def test_a_probe_with_loss_fails_and_the_next_waits_twice_as_long() -> None:
    c = consumer(0, last_nack_at=0.0, tried_at=0.0)
    assert choose(c, 700_000, 100.0) == (0, ALL, "probing")
    c.track.nacked += 1  # the subscriber lost packets under the probe
    assert choose(c, 700_000, 104.5) == (0, ALL, "bandwidth")
    assert c.trial_wait == 8.0
    assert choose(c, 700_000, 110.0) == (0, ALL, "bandwidth")  # 5.5 s later: not yet
    assert choose(c, 700_000, 113.0)[2] == "probing"


def test_no_probe_while_the_estimate_is_low_and_packets_were_lost() -> None:
    c = consumer(0, last_nack_at=99.0, tried_at=0.0)
    assert choose(c, 450_000, 100.0) == (0, ALL, "bandwidth")
    assert c.probe_target is None


def test_temporal_layers_come_back_by_a_probe() -> None:
    c = consumer(1, temporal=0, last_nack_at=0.0, tried_at=0.0)
    assert choose(c, 700_000, 100.0) == (1, 0, "probing")  # 700k >= 1.3 x 400k (40 %)
    assert (c.probe_target, c.probe_temporal) == (1, ALL)
    assert c.probe_rate == int(600_000 * 1.15)  # the step: 1M - 400k
    assert choose(c, 690_000, 104.5) == (1, ALL, "probing")


def test_a_consumer_is_not_settled_while_its_temporal_limit_just_changed() -> None:
    c = consumer(1, temporal=1, temporal_at=99.0, reason="bandwidth")
    assert choose(c, 100_000, 100.0) == (1, 1, "bandwidth")


def test_apply_drops_temporal_layers_at_once_and_asks_a_keyframe_only_for_a_layer() -> None:
    c = consumer(1)
    assert layer_choice.apply(c, Choice(1, 1, "bandwidth"), 100.0) is False
    assert (c.temporal, c.track.max_temporal, c.temporal_at) == (1, 1, 100.0)
    assert layer_choice.apply(c, Choice(0, ALL, "bandwidth"), 101.0) is True
    assert (c.target, c.layer, c.track.max_temporal) == (0, 1, ALL)


def test_a_fall_soon_after_a_rise_makes_the_next_trial_wait_longer() -> None:
    c = consumer(0)
    layer_choice.apply(c, Choice(1, ALL, "probing"), 100.0)
    assert c.raised_at == 100.0
    layer_choice.apply(c, Choice(1, 1, "bandwidth"), 102.0)  # 2 s after the rise
    assert c.trial_wait == 8.0
    layer_choice.apply(c, Choice(1, 0, "bandwidth"), 110.0)  # long after: no penalty
    assert c.trial_wait == 8.0


def test_the_forced_hook_cycles_layers_then_the_base_temporal_layer() -> None:
    steps = [layer_choice.forced(LAYERS, t, 2.0) for t in (0.0, 2.0, 4.0, 6.0)]
    assert [(c.spatial, c.temporal) for c in steps] == [(0, ALL), (1, ALL), (1, 0), (0, ALL)]


def test_a_switch_waiting_for_its_keyframe_is_kept() -> None:
    # The probe succeeded (target 1), the keyframe of layer 1 has not come yet: the next
    # tick keeps the target instead of choosing from the layer still forwarded.
    c = consumer(0, target=1, reason="probing", last_nack_at=0.0, tried_at=99.9)
    assert choose(c, 700_000, 100.0) == (1, ALL, "probing")
    c.view = View(200)  # unless the tile now wants less
    assert choose(c, 700_000, 100.1) == (0, ALL, "tile")


def test_a_step_the_estimate_already_covers_is_taken_without_a_probe() -> None:
    cheap = [Layer("q", 135, 5_000), Layer("h", 270, 7_000), Layer("f", 540, 15_000)]
    c = consumer(0, last_nack_at=0.0, tried_at=0.0)
    got = layer_choice.decide(c, cheap, 100_000, 100.0)
    assert (got.spatial, got.temporal, got.reason) == (1, ALL, "bandwidth")
    assert c.probe_target is None
    c.layer = c.target = 1
    got = layer_choice.decide(c, cheap, 100_000, 105.0)
    assert (got.spatial, got.reason) == (2, "best")


def test_a_link_that_carries_what_it_is_sent_is_not_congested_however_the_remb_splits() -> None:
    # A subscriber receiving little (two voices, still pictures) has a small REMB (1.5x
    # what it receives): this track's share looks far short, the link is not.
    c = consumer(1, last_nack_at=99.5, congested_since=98.0)
    assert choose(c, 100_000, 100.0)[2] == "bandwidth"  # alone, 10 % of the layer: down
    got = layer_choice.decide(c, LAYERS, 100_000, 100.0, link=1.1)
    assert (got.spatial, got.temporal) == (1, ALL)
    c = consumer(1, last_nack_at=99.5, congested_since=98.0)
    got = layer_choice.decide(c, LAYERS, 100_000, 100.0, link=0.5)  # the link is short
    assert got.reason == "bandwidth" and (got.spatial, got.temporal) < (1, ALL)
