"""Names drawn with a real text stack: Pillow (FreeType; libraqm for shaping and bidi) and
installed fonts chosen per character.

A name is split into runs, each of one font (the first in the chain with a glyph for the
character) and one bidi level (a run-level form of the Unicode bidi algorithm: enough for a
name, no explicit embeddings). Each run is shaped by raqm in its own direction, and the runs are
placed in visual order (rule L2), so ``محمد 😀`` shows the emoji left of the Arabic and Arabic
letters join. The result is an anti-aliased alpha mask (uint8); callers cache what they draw.

Default chain (docs/recording.md): ``recording.font`` if set, Noto Sans (Latin, Greek,
Cyrillic), Noto Sans Arabic and Hebrew, DejaVu Sans (wide coverage, monochrome emoji), Noto Sans
CJK SC (Chinese, Japanese, Korean), Symbola (the emoji and symbols left), then every other
``NotoSans*-Regular`` of fonts-noto-core (Devanagari, Thai, ...). Missing files are skipped; with
none at all, :attr:`TextRenderer.available` is False and callers use the bitmap font.
"""

from __future__ import annotations

import functools
import glob
import logging
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, features

log = logging.getLogger(__name__)

NOTO = "/usr/share/fonts/truetype/noto"
# (path, face index in a collection)
DEFAULT_FONTS: tuple[tuple[str, int], ...] = (
    (f"{NOTO}/NotoSans-Regular.ttf", 0),  # fonts-noto-core
    (f"{NOTO}/NotoSansArabic-Regular.ttf", 0),
    (f"{NOTO}/NotoSansHebrew-Regular.ttf", 0),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 0),  # fonts-dejavu-core
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),  # fonts-noto-cjk: SC face
    ("/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf", 0),  # fonts-symbola
)
EXTRA_FONTS = f"{NOTO}/NotoSans*-Regular.ttf"  # the other scripts, looked at last
ELLIPSIS = "\u2026"
ZWNJ = "\u200c"

RAQM = features.check("raqm") is True
_cmap_lock = threading.Lock()


@functools.cache
def _cmap(path: str, index: int) -> frozenset[int]:
    """The code points a font has glyphs for (read once per process, shared by threads)."""
    from fontTools.ttLib import TTCollection, TTFont  # only when a label is drawn

    with _cmap_lock:
        if path.lower().endswith((".ttc", ".otc")):
            font = TTCollection(path, lazy=True).fonts[index]
        else:
            font = TTFont(path, lazy=True, fontNumber=index)
        return frozenset(font.getBestCmap() or {})


def _attaches(char: str) -> bool:
    """Marks, joiners, variation selectors and skin tones stay in the previous run's font."""
    cat = unicodedata.category(char)
    return cat[0] == "M" or cat == "Cf" or 0x1F3FB <= ord(char) <= 0x1F3FF


def grapheme_starts(text: str) -> list[int]:
    """Where a user-perceived character may start (no cut before a mark or after a ZWJ)."""
    return [
        i for i, c in enumerate(text) if i == 0 or (not _attaches(c) and text[i - 1] != "\u200d")
    ] + [len(text)]


def bidi_levels(text: str) -> list[int]:
    """Embedding levels per character: rules P2-P3, W1, W2, W3, W7, N1, N2, I1, I2."""
    types = [unicodedata.bidirectional(c) for c in text]
    base = 0
    for t in types:
        if t in ("L", "R", "AL"):
            base = 0 if t == "L" else 1
            break
    sos = "R" if base else "L"
    resolved: list[str] = []
    last_strong = sos
    for t in types:
        if t == "NSM":
            t = resolved[-1] if resolved else sos
        if t in ("L", "R", "AL"):
            last_strong = t
        if t == "EN":
            t = "AN" if last_strong == "AL" else "L" if last_strong == "L" else "EN"
        resolved.append("R" if t == "AL" else t)
    strongish = {"L": "L", "R": "R", "EN": "R", "AN": "R"}  # numbers act as R on neutrals
    i = 0
    while i < len(resolved):
        if resolved[i] in strongish:
            i += 1
            continue
        j = i
        while j < len(resolved) and resolved[j] not in strongish:
            j += 1
        before = strongish[resolved[i - 1]] if i > 0 else sos
        after = strongish[resolved[j]] if j < len(resolved) else sos
        fill = before if before == after else sos
        resolved[i:j] = [fill] * (j - i)
        i = j
    if base == 0:
        return [0 if t == "L" else 1 if t == "R" else 2 for t in resolved]
    return [1 if t == "R" else 2 for t in resolved]


def visual_order(levels: list[int]) -> list[int]:
    """Rule L2 on runs: indices of the runs from left to right."""
    order = list(range(len(levels)))
    if not levels:
        return order
    odd = [lv for lv in levels if lv % 2]
    lowest = min(odd) if odd else max(levels) + 1
    for level in range(max(levels), lowest - 1, -1):
        i = 0
        while i < len(order):
            if levels[order[i]] >= level:
                j = i
                while j < len(order) and levels[order[j]] >= level:
                    j += 1
                order[i:j] = reversed(order[i:j])
                i = j
            else:
                i += 1
    return order


@dataclass(frozen=True, slots=True)
class Run:
    text: str
    font: int  # index in the renderer's chain
    level: int


class TextRenderer:
    """Draws lines of text with per-character font fallback. One per thread: FreeType faces
    are not shared between threads (the glyph coverage is)."""

    def __init__(self, font: Path | None = None, fonts: tuple[tuple[str, int], ...] | None = None):
        chain: list[tuple[str, int]] = []
        if font is not None:
            if Path(font).is_file():
                chain.append((str(font), 0))
            else:
                log.warning("recording.font %s is not a file: using the installed fonts", font)
        candidates = list(DEFAULT_FONTS if fonts is None else fonts)
        if fonts is None:
            candidates += [(p, 0) for p in sorted(glob.glob(EXTRA_FONTS))]
        for path, index in candidates:
            if (path, index) not in chain and Path(path).is_file():
                chain.append((path, index))
        self.fonts = chain
        self._faces: dict[tuple[int, int], ImageFont.FreeTypeFont] = {}
        self._font_of: dict[str, int] = {}

    @property
    def available(self) -> bool:
        return bool(self.fonts)

    def face(self, index: int, size: int) -> ImageFont.FreeTypeFont:
        key = (index, size)
        face = self._faces.get(key)
        if face is None:
            path, number = self.fonts[index]
            engine = ImageFont.Layout.RAQM if RAQM else ImageFont.Layout.BASIC
            face = ImageFont.truetype(path, size, index=number, layout_engine=engine)
            self._faces[key] = face
        return face

    def font_for(self, char: str) -> int:
        """The first font in the chain with a glyph for ``char`` (the first one if none has)."""
        found = self._font_of.get(char)
        if found is None:
            found = 0
            for i, (path, number) in enumerate(self.fonts):
                try:
                    if ord(char) in _cmap(path, number):
                        found = i
                        break
                except Exception as exc:  # an unreadable font file: skip it
                    log.warning("font %s: %s", path, exc)
            self._font_of[char] = found
        return found

    def runs(self, text: str) -> list[Run]:
        """``text`` split into runs of one font and one bidi level, in logical order."""
        levels = bidi_levels(text)
        out: list[Run] = []
        current: list[str] = []
        font = level = -1
        for char, lv in zip(text, levels, strict=True):
            if current and lv == level and (_attaches(char) or char.isspace()):
                if char.isspace() and ord(char) not in _cmap(*self.fonts[font]):
                    f = self.font_for(char)
                else:
                    f = font
            else:
                f = self.font_for(char)
            if current and (f != font or lv != level):
                out.append(Run("".join(current), font, level))
                current = []
            current.append(char)
            font, level = f, lv
        if current:
            out.append(Run("".join(current), font, level))
        return out

    def metrics(self, size: int) -> tuple[int, int]:
        """Ascent and descent of the first font: every line of a size is as high."""
        return self.face(0, size).getmetrics()

    def width(self, text: str, size: int) -> float:
        return sum(
            self.face(r.font, size).getlength(r.text, direction=_direction(r.level))
            for r in self.runs(text)
        )

    def render(self, text: str, size: int) -> np.ndarray:
        """An alpha mask (uint8) of one line: height ascent + descent, width the ink's."""
        runs = self.runs(text)
        ascent, descent = self.metrics(size)
        widths = [
            self.face(r.font, size).getlength(r.text, direction=_direction(r.level)) for r in runs
        ]
        pad = size
        image = Image.new("L", (int(sum(widths)) + 2 * pad + 1, ascent + descent), 0)
        draw = ImageDraw.Draw(image)
        x = float(pad)
        for i in visual_order([r.level for r in runs]):
            run = runs[i]
            draw.text(
                (x, ascent),
                run.text if RAQM or not run.level % 2 else run.text[::-1],
                font=self.face(run.font, size),
                fill=255,
                anchor="ls",
                direction=_direction(run.level) if RAQM else None,
            )
            x += widths[i]
        mask = np.asarray(image)
        cols = np.flatnonzero(mask.any(axis=0))
        if len(cols) == 0:
            return np.zeros((ascent + descent, 1), dtype=np.uint8)
        return np.ascontiguousarray(mask[:, cols[0] : cols[-1] + 1])

    def fit(self, text: str, size: int, max_width: int) -> np.ndarray:
        """``render`` of ``text``, or of its longest start that fits with an ellipsis."""
        mask = self.render(text, size)
        if mask.shape[1] <= max_width:
            return mask
        starts = grapheme_starts(text)
        lo, hi = 0, len(starts) - 2  # cut before starts[k]: keep text[:starts[k]]
        best = self.render(ELLIPSIS, size)
        while lo <= hi:
            mid = (lo + hi) // 2
            candidate = self.render(text[: starts[mid]].rstrip() + ELLIPSIS, size)
            if candidate.shape[1] <= max_width:
                best, lo = candidate, mid + 1
            else:
                hi = mid - 1
        return best[:, :max_width]


def _direction(level: int) -> str:
    return "rtl" if level % 2 else "ltr"


def initials(name: str) -> str:
    """Up to two initials as written: ``Ada Lovelace`` -> ``AL``, ``Зоя Петрова`` -> ``ЗП``,
    ``王小明`` -> ``王``. Joined by a zero-width non-joiner, so Arabic initials stay apart."""
    words = name.split()
    if not words:
        return "?"
    picks = words if len(words) == 1 else [words[0], words[-1]]
    out = []
    for word in picks:
        starts = grapheme_starts(word)
        first = word[: starts[1]]
        out.append(first[0].upper() + first[1:] if len(first[0].upper()) == 1 else first)
    return ZWNJ.join(out)
