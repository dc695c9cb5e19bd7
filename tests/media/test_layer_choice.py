"""The router's choice of a simulcast layer for one consumer over time (Router._choose_one):
the tile caps at once, the estimate brings a layer down only with loss or a large
shortfall held for a second, and a bigger layer is probed before it is taken. Pure: no
network; the consumer's track is a real ForwardingTrack that is never started."""

from __future__ import annotations

from typing import Any

import pytest

from sfu.media.aiortc.sender import ForwardingTrack, Packer
from sfu.media.consumer import Consumer
from sfu.media.layer_selector import Layer, View

H, F = Layer("h", 240, 400_000), Layer("f", 480, 1_000_000)
LAYERS = [H, F]


def consumer(layer: int | None = 1, **state: Any) -> Consumer:
    track = ForwardingTrack("video", "t", 60, request_keyframe=lambda: None)
    c = Consumer("p", "alice", "camera", "video", track, Packer(lambda b: None), lambda: None, "s")
    c.layer = c.target = layer
    for key, value in state.items():
        setattr(c, key, value)
    return c


@pytest.fixture
def choose(make_router: Any) -> Any:
    router = make_router()
    return lambda c, estimate, now: router._choose_one(c, LAYERS, estimate, now)


def test_a_new_consumer_takes_the_best_the_tile_allows(choose: Any) -> None:
    assert choose(consumer(None), 50_000, 100.0) == (1, "best")
    assert choose(consumer(None, view=View(200)), None, 100.0) == (0, "tile")


def test_a_smaller_tile_moves_down_at_once_even_while_settling(choose: Any) -> None:
    c = consumer(1, switched_at=99.5, view=View(180))
    assert choose(c, 5_000_000, 100.0) == (0, "tile")


def test_a_layer_just_switched_to_is_kept_while_the_estimate_catches_up(choose: Any) -> None:
    c = consumer(1, switched_at=99.0, reason="probing")
    assert choose(c, 100_000, 100.0) == (1, "probing")


@pytest.mark.parametrize(
    ("estimate", "nack_ago", "held", "want"),
    [
        (800_000, 1.0, 0.0, (1, "best")),  # short, lossy, but not for a second yet
        (800_000, 1.0, 1.5, (0, "bandwidth")),  # short and lossy for over a second
        (800_000, 5.0, 1.5, (1, "best")),  # short without loss: the REMB lags, stay
        (500_000, 5.0, 1.5, (0, "bandwidth")),  # far short (under 60 %), loss or not
        (1_200_000, 1.0, 1.5, (1, "best")),  # enough
    ],
)
def test_down_only_with_loss_or_a_large_shortfall_held_a_second(
    choose: Any, estimate: int, nack_ago: float, held: float, want: tuple[int, str]
) -> None:
    now = 100.0
    c = consumer(1, last_nack_at=now - nack_ago, congested_since=now - held if held else None)
    assert choose(c, estimate, now) == want


def test_a_bigger_layer_is_probed_then_taken_when_the_link_carried_the_probe(
    choose: Any,
) -> None:
    c = consumer(0, last_nack_at=0.0, tried_at=0.0)
    assert choose(c, 700_000, 100.0) == (0, "probing")  # 700k >= 1.3 x 400k: probe
    assert c.probe_target == 1 and c.probe_rate == int(600_000 * 1.15)
    assert choose(c, 690_000, 102.0) == (0, "probing")  # still probing
    assert choose(c, 900_000, 104.5) == (1, "probing")  # ended, nothing lost: up
    assert c.probe_target is None and c.trial_wait == 4.0


def test_a_probe_with_loss_fails_and_the_next_waits_twice_as_long(choose: Any) -> None:
    c = consumer(0, last_nack_at=0.0, tried_at=0.0)
    assert choose(c, 700_000, 100.0) == (0, "probing")
    c.track.nacked += 1  # the subscriber lost packets under the probe
    assert choose(c, 700_000, 104.5) == (0, "bandwidth")
    assert c.trial_wait == 8.0
    assert choose(c, 700_000, 110.0) == (0, "bandwidth")  # 5.5 s later: not yet
    assert choose(c, 700_000, 113.0)[1] == "probing"


def test_no_probe_while_the_estimate_is_low_and_packets_were_lost(choose: Any) -> None:
    c = consumer(0, last_nack_at=99.0, tried_at=0.0)
    assert choose(c, 450_000, 100.0) == (0, "bandwidth")
    assert c.probe_target is None
