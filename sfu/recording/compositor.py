"""Video compositing: tile layouts and an I420 canvas drawn with numpy.

The canvas is kept in the encoder's own pixel format (planar YUV 4:2:0) so a composed frame
needs no colour conversion: decoded tiles are scaled by swscale straight into YUV and copied
in, and only tiles whose picture changed are redrawn.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from sfu.recording import font, text

TileKey = Hashable


@dataclass(frozen=True, slots=True)
class Rect:
    """A tile's place on the canvas, in pixels; all values even (4:2:0 chroma)."""

    x: int
    y: int
    w: int
    h: int

    @property
    def centre(self) -> tuple[int, int]:
        return self.x + self.w // 2, self.y + self.h // 2


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def rgb_to_yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.601 limited range, the matrix swscale uses by default (and the output is tagged)."""
    r, g, b = rgb
    y = 16 + (65.738 * r + 129.057 * g + 25.064 * b) / 256
    u = 128 + (-37.945 * r - 74.494 * g + 112.439 * b) / 256
    v = 128 + (112.439 * r - 94.154 * g - 18.285 * b) / 256
    return round(y), round(u), round(v)


def parse_colour(value: str) -> tuple[int, int, int]:
    """``#rrggbb`` to an RGB tuple."""
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


def grid_shape(count: int) -> tuple[int, int]:
    """Columns and rows for ``count`` tiles: 1, 2x1, 2x2, 3x2, 3x3, 4x3, 4x4 ..."""
    if count <= 1:
        return 1, 1
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    return cols, rows


def _row_of_tiles(
    keys: Sequence[TileKey], x: int, y: int, w: int, h: int, gap: int
) -> dict[TileKey, Rect]:
    """Tiles of 16:9 (or narrower if they must) in one centred row within the box."""
    n = len(keys)
    if n == 0:
        return {}
    tile_w = min((w - gap * (n - 1)) / n, h * 16 / 9)
    total = tile_w * n + gap * (n - 1)
    left = x + (w - total) / 2
    return {
        key: Rect(_even(left + i * (tile_w + gap)), _even(y), _even(tile_w), _even(h))
        for i, key in enumerate(keys)
    }


def grid_layout(keys: Sequence[TileKey], width: int, height: int) -> dict[TileKey, Rect]:
    """Equal 16:9 cells, the block centred; an incomplete last row is centred too."""
    gap = _even(width / 160)
    cols, rows = grid_shape(len(keys))
    cell_w = (width - gap * (cols + 1)) / cols
    cell_h = (height - gap * (rows + 1)) / rows
    # Cameras are mostly 16:9 or 4:3: cells of 16:9 waste less space on letterbox bars.
    cell_w, cell_h = min(cell_w, cell_h * 16 / 9), min(cell_h, cell_w * 9 / 16)
    left = (width - cols * cell_w - (cols - 1) * gap) / 2
    top = (height - rows * cell_h - (rows - 1) * gap) / 2
    out: dict[TileKey, Rect] = {}
    for row in range(rows):
        row_keys = keys[row * cols : (row + 1) * cols]
        if not row_keys:
            break
        offset = (cols - len(row_keys)) * (cell_w + gap) / 2
        for col, key in enumerate(row_keys):
            out[key] = Rect(
                _even(left + offset + col * (cell_w + gap)),
                _even(top + row * (cell_h + gap)),
                _even(cell_w),
                _even(cell_h),
            )
    return out


def focus_layout(
    main: TileKey, others: Sequence[TileKey], width: int, height: int
) -> dict[TileKey, Rect]:
    """One large tile (active speaker or screen share) above a strip of the others."""
    gap = _even(width / 160)
    if not others:
        return {main: Rect(gap, gap, _even(width - 2 * gap), _even(height - 2 * gap))}
    strip_h = _even(height / 5)
    main_h = height - strip_h - 3 * gap
    out = {main: Rect(gap, gap, _even(width - 2 * gap), _even(main_h))}
    out.update(_row_of_tiles(others, gap, gap * 2 + main_h, width - 2 * gap, strip_h, gap))
    return out


def compute_layout(
    keys: Sequence[TileKey],
    width: int,
    height: int,
    mode: str,
    main: TileKey | None = None,
) -> dict[TileKey, Rect]:
    """Rects for ``keys``: a grid, or ``main`` large (speaker mode, or a screen share)."""
    if not keys:
        return {}
    if main is not None and main in keys and (mode == "speaker" or len(keys) > 1):
        return focus_layout(main, [k for k in keys if k != main], width, height)
    return grid_layout(keys, width, height)


@dataclass(slots=True)
class Tile:
    """What one tile shows: a decoded picture, or a placeholder with the name."""

    key: TileKey
    name: str
    frame: av.VideoFrame | None = None
    frame_id: int = 0  # bumps when ``frame`` is a new picture


_PLACEHOLDER_COLOURS = [(52, 73, 94), (22, 100, 90), (110, 60, 120), (140, 75, 40), (40, 80, 140)]
_TILE_BG = rgb_to_yuv((0, 0, 0))
_WHITE = rgb_to_yuv((255, 255, 255))
_LABEL_BG_Y = rgb_to_yuv((24, 24, 24))[0]


def placeholder_colour(name: str) -> tuple[int, int, int]:
    """A stable muted colour per name."""
    digest = hashlib.sha1(name.encode()).digest()
    return _PLACEHOLDER_COLOURS[digest[0] % len(_PLACEHOLDER_COLOURS)]


def initials(name: str) -> str:
    """Up to two initials for the bitmap font: ``Ada Lovelace`` -> ``AL``."""
    words = [w for w in font.normalise(name).split() if w]
    if not words:
        return "?"
    if len(words) == 1:
        return words[0][0]
    return words[0][0] + words[-1][0]


class Canvas:
    """A planar YUV 4:2:0 picture with a few drawing operations."""

    def __init__(self, width: int, height: int, background: tuple[int, int, int]) -> None:
        self.width = width
        self.height = height
        self.background = rgb_to_yuv(background)
        self._buf = np.empty(width * height * 3 // 2, dtype=np.uint8)
        area = width * height
        self.y = self._buf[:area].reshape(height, width)
        self.u = self._buf[area : area * 5 // 4].reshape(height // 2, width // 2)
        self.v = self._buf[area * 5 // 4 :].reshape(height // 2, width // 2)
        self.clear()

    def clear(self) -> None:
        self.fill(Rect(0, 0, self.width, self.height), self.background)

    def fill(self, rect: Rect, yuv: tuple[int, int, int]) -> None:
        x, y, w, h = rect.x, rect.y, rect.w, rect.h
        self.y[y : y + h, x : x + w] = yuv[0]
        self.u[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = yuv[1]
        self.v[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = yuv[2]

    def paste(self, x: int, y: int, frame: av.VideoFrame) -> None:
        """Copy a yuv420p frame (even size) with its top-left corner at (x, y)."""
        w, h = frame.width, frame.height
        for plane, target, pw, ph in (
            (frame.planes[0], self.y, w, h),
            (frame.planes[1], self.u, w // 2, h // 2),
            (frame.planes[2], self.v, w // 2, h // 2),
        ):
            # memoryview: numpy's stubs for Python 3.11 know no buffer protocol (zero-copy).
            data = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(-1, plane.line_size)
            px, py = (x, y) if target is self.y else (x // 2, y // 2)
            target[py : py + ph, px : px + pw] = data[:ph, :pw]

    def draw_mask(self, x: int, y: int, mask: np.ndarray, yuv: tuple[int, int, int]) -> None:
        """Paint ``mask`` in a colour with its top-left at (x, y), clipped to the canvas."""
        x, y = x // 2 * 2, y // 2 * 2
        if x < 0 or y < 0:  # negative indices would wrap around in numpy
            mask = mask[max(0, -y) :, max(0, -x) :]
            x, y = max(0, x), max(0, y)
        h = min(mask.shape[0], self.height - y)
        w = min(mask.shape[1], self.width - x)
        if h <= 0 or w <= 0:
            return
        mask = mask[:h, :w]
        self.y[y : y + h, x : x + w][mask] = yuv[0]
        # Chroma at half resolution: a chroma sample is set when any of its 4 lumas is.
        ph, pw = (h + 1) // 2, (w + 1) // 2
        padded = np.zeros((ph * 2, pw * 2), dtype=bool)
        padded[:h, :w] = mask
        # An array (numpy's stubs allow a scalar for any axis argument).
        cmask = cast(np.ndarray, padded.reshape(ph, 2, pw, 2).any(axis=(1, 3)))
        ch = min(ph, self.height // 2 - y // 2)
        cw = min(pw, self.width // 2 - x // 2)
        self.u[y // 2 : y // 2 + ch, x // 2 : x // 2 + cw][cmask[:ch, :cw]] = yuv[1]
        self.v[y // 2 : y // 2 + ch, x // 2 : x // 2 + cw][cmask[:ch, :cw]] = yuv[2]

    def blend(self, x: int, y: int, alpha: np.ndarray, yuv: tuple[int, int, int]) -> None:
        """Paint a colour through an anti-aliased mask (uint8 alpha) at (x, y), clipped."""
        x, y = x // 2 * 2, y // 2 * 2
        if x < 0 or y < 0:
            alpha = alpha[max(0, -y) :, max(0, -x) :]
            x, y = max(0, x), max(0, y)
        h = min(alpha.shape[0], self.height - y) // 2 * 2
        w = min(alpha.shape[1], self.width - x) // 2 * 2
        if h <= 0 or w <= 0:
            return
        a = alpha[:h, :w].astype(np.float32) / 255
        region = self.y[y : y + h, x : x + w]
        region[:] = (region + (yuv[0] - region.astype(np.float32)) * a + 0.5).astype(np.uint8)
        # Chroma at half resolution: the mean of each 2x2 block of alpha.
        ca = a.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        for plane, value in ((self.u, yuv[1]), (self.v, yuv[2])):
            region = plane[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2]
            region[:] = (region + (value - region.astype(np.float32)) * ca + 0.5).astype(np.uint8)

    def paste_luma(self, x: int, y: int, patch: np.ndarray, chroma: int = 128) -> None:
        """Copy a luma patch (even size, even position) with a flat chroma (128: grey)."""
        h = min(patch.shape[0], self.height - y) // 2 * 2
        w = min(patch.shape[1], self.width - x) // 2 * 2
        if h <= 0 or w <= 0:
            return
        self.y[y : y + h, x : x + w] = patch[:h, :w]
        self.u[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = chroma
        self.v[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = chroma

    def to_frame(self) -> av.VideoFrame:
        """A new frame holding a copy of the canvas (the encoder may keep it)."""
        # Plane-wise numpy copies: about 40% cheaper than VideoFrame.from_ndarray here.
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        for plane, src in zip(frame.planes, (self.y, self.u, self.v), strict=True):
            dst = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(-1, plane.line_size)
            dst[: src.shape[0], : src.shape[1]] = src
        return frame


def fit(src_w: int, src_h: int, rect: Rect) -> Rect:
    """The largest even rect of the source's aspect ratio centred in ``rect`` (letterbox)."""
    scale = min(rect.w / src_w, rect.h / src_h)
    w = min(rect.w, _even(src_w * scale))
    h = min(rect.h, _even(src_h * scale))
    return Rect(rect.x + (rect.w - w) // 2 // 2 * 2, rect.y + (rect.h - h) // 2 // 2 * 2, w, h)


class Compositor:
    """Keeps the canvas and redraws only what changed between two output frames."""

    def __init__(
        self,
        width: int,
        height: int,
        background: tuple[int, int, int] = (16, 20, 24),
        labels: bool = True,
        font_path: Path | None = None,
        renderer: text.TextRenderer | None = None,
    ) -> None:
        self.width = width
        self.height = height
        self.labels = labels
        # Names as written (FreeType, per-character fallback); the bitmap font without fonts.
        self.text = renderer if renderer is not None else text.TextRenderer(font_path)
        self._labels: dict[tuple[str, int, int], np.ndarray] = {}
        self._initials: dict[tuple[str, int, int], tuple[np.ndarray, int, int]] = {}
        self.canvas = Canvas(width, height, background)
        self._layout: dict[TileKey, Rect] = {}
        self._drawn: dict[TileKey, tuple[int, str, bool]] = {}
        self._scalers: dict[TileKey, VideoReformatter] = {}
        self._fitted: dict[TileKey, Rect | None] = {}
        self._frame: av.VideoFrame | None = None

    @property
    def layout(self) -> dict[TileKey, Rect]:
        """The rects of the last composed frame."""
        return dict(self._layout)

    def compose(
        self, tiles: Sequence[Tile], mode: str = "grid", main: TileKey | None = None
    ) -> av.VideoFrame:
        """The output picture for these tiles; the same frame object if nothing changed."""
        layout = compute_layout([t.key for t in tiles], self.width, self.height, mode, main)
        changed = layout != self._layout
        if changed:
            self.canvas.clear()
            self._drawn.clear()
            self._fitted.clear()
            self._layout = layout
            for key in list(self._scalers):
                if key not in layout:
                    del self._scalers[key]
        for tile in tiles:
            state = (tile.frame_id, tile.name, tile.frame is not None)
            if self._drawn.get(tile.key) == state:
                continue
            self._draw(tile, layout[tile.key])
            self._drawn[tile.key] = state
            changed = True
        if changed or self._frame is None:
            self._frame = self.canvas.to_frame()
        return self._frame

    def _draw(self, tile: Tile, rect: Rect) -> None:
        if tile.frame is None:
            self._draw_placeholder(tile.name, rect)
            self._fitted[tile.key] = None
        else:
            src = tile.frame
            target = fit(src.width, src.height, rect)
            if self._fitted.get(tile.key) != target:  # bars only need painting once
                self.canvas.fill(rect, _TILE_BG)
                self._fitted[tile.key] = target
            scaler = self._scalers.setdefault(tile.key, VideoReformatter())
            scaled = scaler.reformat(
                src, width=target.w, height=target.h, format="yuv420p", interpolation="BILINEAR"
            )
            self.canvas.paste(target.x, target.y, scaled)
        if self.labels and tile.name:
            self._draw_label(tile.name, rect)

    def _draw_placeholder(self, name: str, rect: Rect) -> None:
        self.canvas.fill(rect, rgb_to_yuv(placeholder_colour(name)))
        cx, cy = rect.centre
        if not self.text.available:
            scale = max(1, min(rect.h // 5, rect.w // 4) // font.GLYPH_HEIGHT)
            mask = font.render(initials(name), scale)
            self.canvas.draw_mask(cx - mask.shape[1] // 2, cy - mask.shape[0] // 2, mask, _WHITE)
            return
        alpha, dx, dy = self._initials_mask(name, rect.w, rect.h)
        self.canvas.blend(cx - dx, cy - dy, alpha, _WHITE)

    def _initials_mask(self, name: str, w: int, h: int) -> tuple[np.ndarray, int, int]:
        """The initials' alpha, and the offset of their ink's centre (cached per size)."""
        key = (name, w, h)
        found = self._initials.get(key)
        if found is None:
            # Capitals of about a fifth of the tile's height, as the bitmap initials.
            size = max(10, round(min(h / 5, w / 4) * 1.4))
            alpha = self.text.render(text.initials(name), size)
            rows = np.flatnonzero(alpha.any(axis=1))
            top, bottom = (rows[0], rows[-1]) if len(rows) else (0, alpha.shape[0] - 1)
            found = (alpha, alpha.shape[1] // 2, int(top + bottom) // 2)
            _remember(self._initials, key, found)
        return found

    def _draw_label(self, name: str, rect: Rect) -> None:
        key = (name, rect.w, rect.h)
        patch = self._labels.get(key)
        if patch is None:
            if self.text.available:
                patch = text_label_patch(self.text, name, rect.w, rect.h)
            else:
                patch = label_patch(name, rect.w, rect.h)
            _remember(self._labels, key, patch)
        margin = patch.shape[0] // 3 // 2 * 2
        self.canvas.paste_luma(rect.x + margin, rect.y + rect.h - patch.shape[0] - margin, patch)


def _remember(cache: dict, key: object, value: object, limit: int = 512) -> None:
    """Bounded caches: a long meeting with many people must not grow them without end."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value


def label_size(tile_h: int) -> int:
    """The name's font size in pixels for a tile this high."""
    return max(11, min(30, round(tile_h / 13)))


def text_label_patch(
    renderer: text.TextRenderer, name: str, tile_w: int, tile_h: int
) -> np.ndarray:
    """A name label's luma: anti-aliased white text on a dark grey box, ellipsised to fit."""
    size = label_size(tile_h)
    pad = max(2, size // 4)
    ascent, descent = renderer.metrics(size)
    margin = (ascent + descent + 2 * pad) // 3 // 2 * 2
    alpha = renderer.fit(name, size, max(1, tile_w - 2 * margin - 2 * pad))
    h = (alpha.shape[0] + 2 * pad + 1) // 2 * 2
    w = (alpha.shape[1] + 2 * pad + 1) // 2 * 2
    a = np.zeros((h, w), dtype=np.float32)
    a[pad : pad + alpha.shape[0], pad : pad + alpha.shape[1]] = alpha / 255
    patch = (_LABEL_BG_Y + (_WHITE[0] - _LABEL_BG_Y) * a + 0.5).astype(np.uint8)
    patch.setflags(write=False)
    return patch


@functools.lru_cache(maxsize=512)
def label_patch(name: str, tile_w: int, tile_h: int) -> np.ndarray:
    """A name label's luma: white text on a dark grey box, sized for the tile (cached)."""
    scale = max(1, min(3, round(tile_h / 140)))
    pad = 2 * scale
    text = name
    while len(text) > 1 and font.text_width(text, scale) > tile_w - 8 * pad:
        text = text[:-1]
    if text != name:
        text = text[:-1] + "." if len(text) > 1 else text
    mask = font.render(text, scale)
    h = (mask.shape[0] + 2 * pad + 1) // 2 * 2
    w = (mask.shape[1] + 2 * pad + 1) // 2 * 2
    patch = np.full((h, w), _LABEL_BG_Y, dtype=np.uint8)
    patch[pad : pad + mask.shape[0], pad : pad + mask.shape[1]][mask] = _WHITE[0]
    patch.setflags(write=False)
    return patch
