"""Layouts, letterboxing, labels and placeholders, checked on the composed pictures."""

from __future__ import annotations

import av
import numpy as np
import pytest

from sfu.recording import font
from sfu.recording.compositor import Compositor, Rect, Tile, compute_layout, grid_shape
from sfu.recording.mixer import Mixer, soft_limit
from sfu.recording.text import TextRenderer

W, H = 640, 360


def solid(rgb: tuple[int, int, int], w: int = 320, h: int = 240) -> av.VideoFrame:
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[:] = rgb
    return av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")


def rgb(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24").astype(int)


@pytest.mark.parametrize(
    ("count", "shape"),
    [(1, (1, 1)), (2, (2, 1)), (3, (2, 2)), (4, (2, 2)), (6, (3, 2)), (9, (3, 3)), (10, (4, 3))],
)
def test_grid_shapes_and_tiles_do_not_overlap(count, shape):
    assert grid_shape(count) == shape
    rects = list(compute_layout(list(range(count)), 1280, 720, "grid").values())
    assert len(rects) == count
    mask = np.zeros((720, 1280), dtype=int)
    for r in rects:
        assert r.x >= 0 and r.y >= 0 and r.x + r.w <= 1280 and r.y + r.h <= 720
        assert r.w % 2 == r.h % 2 == r.x % 2 == r.y % 2 == 0
        mask[r.y : r.y + r.h, r.x : r.x + r.w] += 1
    assert mask.max() == 1


def test_speaker_layout_puts_the_speaker_large():
    rects = compute_layout(["a", "b", "c"], 1280, 720, "speaker", main="b")
    assert rects["b"].w * rects["b"].h > 4 * rects["a"].w * rects["a"].h
    assert rects["a"].y > rects["b"].y + rects["b"].h - 1  # the strip is below


def test_letterbox_keeps_the_aspect_ratio():
    comp = Compositor(W, H, background=(0, 0, 255), labels=False)
    out = rgb(comp.compose([Tile("a", "A", solid((255, 0, 0), 320, 320), 1)]))
    # A square picture in a 16:9 frame: red square in the middle, black bars left and right.
    rect = comp.layout["a"]
    row = out[H // 2, rect.x : rect.x + rect.w]
    red = np.flatnonzero((row[:, 0] > 200) & (row[:, 2] < 60))
    assert abs(len(red) - rect.h) <= 4  # as wide as it is tall
    assert abs(red[0] - (rect.w - rect.h) // 2) <= 4
    assert (out[H // 2, rect.x + 2] < 30).all()  # letterbox bar
    assert out[1, 1, 2] > 200  # the background colour around the tiles


def test_without_fonts_the_bitmap_font_draws_placeholder_and_label():
    comp = Compositor(W, H, labels=True, renderer=TextRenderer(fonts=()))
    out = rgb(comp.compose([Tile("a", "Ada Lovelace"), Tile("b", "Bob", solid((0, 0, 255)), 1)]))
    ra, rb = comp.layout["a"], comp.layout["b"]
    tile_a = out[ra.y : ra.y + ra.h, ra.x : ra.x + ra.w]
    # Placeholder: a coloured tile (not the background) with white initials "AL" in the middle.
    assert np.abs(tile_a[5, 5] - (16, 20, 24)).max() > 20
    upper = tile_a[: ra.h * 3 // 4].min(axis=2) > 200  # the label is below
    ys, xs = np.nonzero(upper)
    drawn = upper[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    assert (
        abs((ys.min() + ys.max()) / 2 - ra.h / 2) < 4
        and abs((xs.min() + xs.max()) / 2 - ra.w / 2) < 4
    )
    want = font.render("AL", 1)
    rows = np.arange(drawn.shape[0]) * want.shape[0] // drawn.shape[0]
    cols = np.arange(drawn.shape[1]) * want.shape[1] // drawn.shape[1]
    assert (drawn == want[rows][:, cols]).mean() > 0.95
    assert (drawn == font.render("AB", 1)[rows][:, cols]).mean() < 0.9  # and not other letters
    # Label: white text on a dark box at the bottom left of the video tile, blue elsewhere.
    tile_b = out[rb.y : rb.y + rb.h, rb.x : rb.x + rb.w]
    label = tile_b[rb.h - 40 : rb.h - 5, 5:80]
    assert (label.min(axis=2) > 220).sum() > 30
    assert tile_b[rb.h // 3, rb.w // 2, 2] > 200
    assert (tile_b[rb.h // 3, rb.w // 2, :2] < 40).all()


def test_labels_can_be_turned_off():
    comp = Compositor(W, H, labels=False)
    out = rgb(comp.compose([Tile("b", "Bob", solid((0, 0, 255)), 1)]))
    assert (out.min(axis=2) > 220).sum() == 0


def test_unchanged_tiles_reuse_the_picture():
    comp = Compositor(W, H)
    frame = solid((0, 255, 0))
    first = comp.compose([Tile("a", "A", frame, 1)])
    assert comp.compose([Tile("a", "A", frame, 1)]) is first
    assert comp.compose([Tile("a", "A", frame, 2)]) is not first


def test_long_names_are_cut_to_the_tile():
    comp = Compositor(320, 180)
    comp.compose([Tile(i, "A very long participant name indeed " * 3) for i in range(4)])
    assert all(isinstance(r, Rect) for r in comp.layout.values())


def test_mixer_sums_with_headroom_and_never_clips():
    mix = Mixer()
    t = np.arange(4800) / 48000
    for f in (440, 660, 880, 1000):
        mix.add(100, (0.6 * np.sin(2 * np.pi * f * t)).astype(np.float32))
    out = np.concatenate([mix.take(1024) for _ in range(6)])
    assert np.abs(out).max() <= 0.89
    assert (out[:100] == 0).all()  # silence before anyone spoke
    quiet = soft_limit(np.array([0.1, -0.5], dtype=np.float32))
    assert np.allclose(quiet, [0.1, -0.5])  # below the knee: untouched


def test_mixer_drops_late_samples_only():
    mix = Mixer()
    mix.take(1000)
    mix.add(900, np.ones(200, dtype=np.float32) * 0.1)
    assert mix.late_samples == 100
    assert np.allclose(mix.take(100), 0.1)
