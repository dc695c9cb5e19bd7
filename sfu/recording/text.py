"""Names drawn with a real text stack: Pillow (FreeType; libraqm for shaping and bidi) and
installed fonts chosen per character.

A name is split into user-perceived characters (extended grapheme clusters, by ``regex``'s
``\\X``), and those into runs, each of one font (the first in the chain with glyphs for the
character) and one bidi level (the Unicode bidi algorithm, by FriBiDi). Each run is shaped by
raqm in its own direction, and the runs are placed in FriBiDi's visual order, so ``محمد 😀``
shows the emoji left of the Arabic and Arabic letters join. The result is an anti-aliased alpha
mask (uint8); callers cache what they draw.

Default chain (docs/recording.md): ``recording.font`` if set, Noto Sans (Latin, Greek,
Cyrillic), Noto Sans Arabic and Hebrew, DejaVu Sans (wide coverage, monochrome emoji), Noto Sans
CJK SC (Chinese, Japanese, Korean), Symbola (the emoji and symbols left), then every other
``NotoSans*-Regular`` of fonts-noto-core (Devanagari, Thai, ...). Missing files are skipped; with
none at all, :attr:`TextRenderer.available` is False and callers use the bitmap font.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import logging
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import regex
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


def _load_fribidi() -> ctypes.CDLL | None:
    for name in ("libfribidi.so.0", ctypes.util.find_library("fribidi")):
        if name:
            try:
                lib = ctypes.CDLL(name)
            except OSError:
                continue
            lib.fribidi_get_par_embedding_levels_ex.restype = ctypes.c_int8
            lib.fribidi_reorder_line.restype = ctypes.c_int8
            return lib
    log.warning("libfribidi not found: right-to-left names are drawn in typed order")
    return None


_FRIBIDI = _load_fribidi()
_PAR_ON = 0x40  # FRIBIDI_PAR_ON: the paragraph direction from its first strong letter (P2, P3)


@dataclass(frozen=True, slots=True)
class Paragraph:
    """The Unicode bidi algorithm's result for one line, per code point of the text."""

    levels: list[int]  # resolved embedding levels, rule L1 applied
    order: list[int]  # the logical index shown at each position, left to right (rule L2)


def bidi(text: str) -> Paragraph:
    """The full bidi algorithm (UAX #9: explicit embeddings, isolates, bracket pairs) by FriBiDi,
    the library raqm itself uses. python-bidi exposes only the reordered string, not levels."""
    n = len(text)
    if n == 0 or _FRIBIDI is None:
        return Paragraph([0] * n, list(range(n)))
    chars = (ctypes.c_uint32 * n)(*map(ord, text))
    types = (ctypes.c_uint32 * n)()
    brackets = (ctypes.c_uint32 * n)()
    levels = (ctypes.c_int8 * n)()
    order = (ctypes.c_int * n)(*range(n))
    base = ctypes.c_uint32(_PAR_ON)
    _FRIBIDI.fribidi_get_bidi_types(chars, n, types)
    _FRIBIDI.fribidi_get_bracket_types(chars, n, types, brackets)
    if not _FRIBIDI.fribidi_get_par_embedding_levels_ex(
        types, brackets, n, ctypes.byref(base), levels
    ):
        return Paragraph([0] * n, list(range(n)))  # out of memory in FriBiDi
    _FRIBIDI.fribidi_reorder_line(0, types, n, 0, base, levels, None, order)
    return Paragraph(list(levels), list(order))


def graphemes(text: str) -> list[str]:
    """User-perceived characters (UAX #29 extended grapheme clusters): a letter with its marks,
    an emoji with its skin tone or ZWJ sequence, a flag, an Indic conjunct."""
    return _GRAPHEME.findall(text)


def grapheme_starts(text: str) -> list[int]:
    """Where each user-perceived character starts, then ``len(text)``."""
    return [m.start() for m in _GRAPHEME.finditer(text)] + [len(text)]


_GRAPHEME = regex.compile(r"\X")


def _needs_glyph(char: str) -> bool:
    """Format characters (joiners, tags) and variation selectors are drawn by no glyph."""
    cp = ord(char)
    return not (
        unicodedata.category(char) == "Cf" or 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF
    )


@dataclass(frozen=True, slots=True)
class Run:
    text: str
    font: int  # index in the renderer's chain
    level: int
    start: int  # index of its first code point in the line


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

    def _covers(self, index: int, chars: list[int]) -> bool:
        path, number = self.fonts[index]
        try:
            cmap = _cmap(path, number)
        except Exception as exc:  # an unreadable font file: skip it
            log.warning("font %s: %s", path, exc)
            return False
        return all(c in cmap for c in chars)

    def font_for(self, cluster: str) -> int:
        """The first font in the chain with glyphs for the whole user-perceived character, else
        the first with one for its base character (else the first font)."""
        found = self._font_of.get(cluster)
        if found is None:
            drawn = [ord(c) for c in cluster if _needs_glyph(c)] or [ord(cluster[0])]
            wanted = (drawn, drawn[:1]) if len(drawn) > 1 else (drawn,)
            found = next(
                (i for chars in wanted for i in range(len(self.fonts)) if self._covers(i, chars)),
                0,
            )
            self._font_of[cluster] = found
        return found

    def runs(self, text: str, levels: list[int] | None = None) -> list[Run]:
        """``text`` split into runs of one font and one bidi level, in logical order; a
        user-perceived character is never split. A space keeps the run's font (so a run of
        Arabic words is shaped as one) when that font has it."""
        if levels is None:
            levels = bidi(text).levels
        out: list[Run] = []
        start = font = level = -1
        i = 0
        for cluster in graphemes(text):
            lv = levels[i]
            if (
                start >= 0
                and lv == level
                and cluster.isspace()
                and self._covers(font, [ord(c) for c in cluster])
            ):
                f = font
            else:
                f = self.font_for(cluster)
            if start >= 0 and (f != font or lv != level):
                out.append(Run(text[start:i], font, level, start))
                start = -1
            if start < 0:
                start = i
            font, level = f, lv
            i += len(cluster)
        if start >= 0:
            out.append(Run(text[start:], font, level, start))
        return out

    def visual_runs(self, text: str) -> list[Run]:
        """The runs from left to right: each is a block of the bidi algorithm's visual order."""
        paragraph = bidi(text)
        position = [0] * len(text)
        for shown, logical in enumerate(paragraph.order):
            position[logical] = shown
        return sorted(self.runs(text, paragraph.levels), key=lambda r: position[r.start])

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
        runs = self.visual_runs(text)
        ascent, descent = self.metrics(size)
        widths = [
            self.face(r.font, size).getlength(r.text, direction=_direction(r.level)) for r in runs
        ]
        pad = size
        image = Image.new("L", (int(sum(widths)) + 2 * pad + 1, ascent + descent), 0)
        draw = ImageDraw.Draw(image)
        x = float(pad)
        for run, width in zip(runs, widths, strict=True):
            rtl = run.level % 2 == 1
            draw.text(
                (x, ascent),
                # raqm lays a right-to-left run out itself; without it, reverse by character
                run.text if RAQM or not rtl else "".join(reversed(graphemes(run.text))),
                font=self.face(run.font, size),
                fill=255,
                anchor="ls",
                direction=_direction(run.level) if RAQM else None,
            )
            x += width
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
        first = graphemes(word)[0]
        out.append(first[0].upper() + first[1:] if len(first[0].upper()) == 1 else first)
    return ZWNJ.join(out)
