"""Layer selection (sfu/media/layer_selector.py) as a table: what is known of a subscriber
in, the layer it gets and why out."""

from __future__ import annotations

from typing import Any

import pytest

from sfu.media.layer_selector import ALL_TEMPORAL, BASE_TEMPORAL, Choice, Layer, View, choose

Q, H, F = Layer("q", 180, 150_000), Layer("h", 360, 500_000), Layer("f", 720, 1_500_000)
THREE = [Q, H, F]
OFF = False

ROWS: list[tuple[str, list[Layer], dict[str, Any], Choice]] = [
    ("nothing known: the best", THREE, {}, Choice(2, ALL_TEMPORAL, "best")),
    (
        "a hidden tile: nothing",
        THREE,
        {"view": View(720, visible=False)},
        Choice(None, ALL_TEMPORAL, "hidden"),
    ),
    ("a thumbnail: the quarter layer", THREE, {"view": View(120)}, Choice(0, ALL_TEMPORAL, "tile")),
    (
        "a half-height tile: the half layer",
        THREE,
        {"view": View(300)},
        Choice(1, ALL_TEMPORAL, "tile"),
    ),
    (
        "a tile taller than any layer: the top",
        THREE,
        {"view": View(1080)},
        Choice(2, ALL_TEMPORAL, "best"),
    ),
    ("low bandwidth mode", THREE, {"preference": "low"}, Choice(0, ALL_TEMPORAL, "preference")),
    ("plenty of bandwidth", THREE, {"estimate": 3_000_000}, Choice(2, ALL_TEMPORAL, "best")),
    (
        "300 kbit/s: the quarter layer",
        THREE,
        {"estimate": 300_000},
        Choice(0, ALL_TEMPORAL, "bandwidth"),
    ),
    (
        "700 kbit/s: the half layer",
        THREE,
        {"estimate": 700_000},
        Choice(1, ALL_TEMPORAL, "bandwidth"),
    ),
    (
        "up needs the margin: 1.6 Mbit/s is not enough to climb to the full layer",
        THREE,
        {"estimate": 1_600_000, "current": 1},
        Choice(1, ALL_TEMPORAL, "bandwidth"),
    ),
    (
        "but is enough to stay on it",
        THREE,
        {"estimate": 1_600_000, "current": 2},
        Choice(2, ALL_TEMPORAL, "best"),
    ),
    (
        "short of the layer: its upper temporal layer goes first (60 %)",
        THREE,
        {"estimate": 1_400_000, "current": 2},
        Choice(2, 1, "bandwidth"),
    ),
    (
        "shorter: its base temporal layer only (40 %)",
        THREE,
        {"estimate": 700_000, "current": 2},
        Choice(2, BASE_TEMPORAL, "bandwidth"),
    ),
    (
        "shorter still: the next layer down, whole",
        THREE,
        {"estimate": 550_000, "current": 2, "temporal": BASE_TEMPORAL},
        Choice(1, ALL_TEMPORAL, "bandwidth"),
    ),
    (
        "a temporal layer comes back only with the margin",
        THREE,
        {"estimate": 1_000_000, "current": 2, "temporal": BASE_TEMPORAL},
        Choice(2, BASE_TEMPORAL, "bandwidth"),
    ),
    (
        "and with it",
        THREE,
        {"estimate": 1_100_000, "current": 2, "temporal": BASE_TEMPORAL},
        Choice(2, 1, "bandwidth"),
    ),
    (
        "a new consumer takes a layer whole: half, not the full layer's base",
        THREE,
        {"estimate": 1_000_000},
        Choice(1, ALL_TEMPORAL, "bandwidth"),
    ),
    (
        "nor a layer below the current one in part",
        THREE,
        {"estimate": 450_000, "current": 2},
        Choice(0, ALL_TEMPORAL, "bandwidth"),
    ),
    (
        "not even the lowest fits: it, without the upper temporal layers",
        THREE,
        {"estimate": 100_000},
        Choice(0, BASE_TEMPORAL, "bandwidth"),
    ),
    (
        "the tile caps before the estimate",
        THREE,
        {"estimate": 3_000_000, "view": View(200)},
        Choice(1, ALL_TEMPORAL, "tile"),
    ),
    (
        "the estimate caps below the tile",
        THREE,
        {"estimate": 300_000, "view": View(700)},
        Choice(0, ALL_TEMPORAL, "bandwidth"),
    ),
    (
        "a paused top layer is skipped",
        [Q, H, Layer("f", 720, 1_500_000, active=OFF)],
        {"estimate": 3_000_000},
        Choice(1, ALL_TEMPORAL, "best"),
    ),
    (
        "a paused small layer: the tile gets the next one up",
        [Layer("q", 180, 150_000, active=OFF), H, F],
        {"view": View(120)},
        Choice(1, ALL_TEMPORAL, "tile"),
    ),
    (
        "no layer arriving",
        [Layer("q", 180, 1, active=OFF)],
        {},
        Choice(None, ALL_TEMPORAL, "unavailable"),
    ),
    (
        "one layer (no simulcast): always it",
        [F],
        {"estimate": 50_000, "view": View(90)},
        Choice(0, BASE_TEMPORAL, "bandwidth"),
    ),
    (
        "sizes not known yet: the tile does not cap",
        [Layer("q", 0, 1), Layer("f", 0, 2)],
        {"view": View(90)},
        Choice(1, ALL_TEMPORAL, "best"),
    ),
]


@pytest.mark.parametrize(("name", "layers", "known", "want"), ROWS, ids=[r[0] for r in ROWS])
def test_choose(name: str, layers: list[Layer], known: dict[str, Any], want: Choice) -> None:
    assert choose(layers, **known) == want
