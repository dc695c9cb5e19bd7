"""Names as they were written: rendered with FreeType and the installed fonts (per-character
fallback, shaping, right to left), in a real recording decoded back with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from sfu.recording import Recorder
from sfu.recording import compositor as comp_mod
from sfu.recording.compositor import Compositor, Tile, compute_layout, label_patch, rgb_to_yuv
from sfu.recording.text import (
    ELLIPSIS,
    TextRenderer,
    bidi,
    grapheme_starts,
    graphemes,
    initials,
)
from sfu.recording.timeline import ManualClock
from sfu.settings import RecordingSettings
from tests.recording.recsynth import BLUE, drive, feeds, packet_actions, vp8_frames

W, H = 1280, 720
NAMES = {
    "latin": "Zoë Ñúñez",
    "cyrillic": "Зоя Петрова",
    "greek": "Σοφία Αλεξίου",
    "arabic": "محمد علي",
    "cjk": "王小明",
    "emoji": "Ada 😀",
}


def question_marks(name: str) -> str:
    """The name as the old bitmap font showed it: ``?`` for everything it did not have."""
    return "".join(c if c.isascii() else "?" for c in name)


@pytest.fixture(scope="module")
def renderer() -> TextRenderer:
    r = TextRenderer()
    if not r.available:
        pytest.fail("no fonts installed: scripts/setup and .ci/run install fonts-noto-core, ...")
    return r


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """Six people, one per script, each sending video, recorded at 720p for 1.5 s."""
    directory = tmp_path_factory.mktemp("names")
    settings = RecordingSettings(
        directory=directory, width=W, height=H, fps=10, preset="ultrafast", video_crf=8
    )
    clock = ManualClock()
    rec = Recorder("names", settings, clock=clock)
    items = [
        f for user in NAMES for f in feeds(user, vp8_frames(lambda t: BLUE, 0.0, 1.5), "video")
    ]
    drive(rec, clock, packet_actions(rec, items), end=1.5, participants=list(NAMES.items()))
    assert rec.state == "stopped" and rec.path is not None
    with av.open(str(rec.path)) as c:
        frames = [f.to_ndarray(format="yuv420p")[:H] for f in c.decode(video=0)]
    return frames[-1].astype(int)


def label_region(luma: np.ndarray, rect, patch: np.ndarray) -> np.ndarray:
    margin = patch.shape[0] // 3 // 2 * 2
    y = rect.y + rect.h - patch.shape[0] - margin
    x = rect.x + margin
    return luma[y : y + patch.shape[0], x : x + patch.shape[1]]


@pytest.mark.parametrize("script", list(NAMES))
def test_each_name_appears_as_written_in_the_recording(recording, renderer, script):
    name = NAMES[script]
    rect = compute_layout([(u, "camera") for u in NAMES], W, H, "grid")[(script, "camera")]
    want = comp_mod.text_label_patch(renderer, name, rect.w, rect.h).astype(int)
    got = label_region(recording, rect, want)
    assert got.shape == want.shape
    # What the name would look like if a character fell back to "?": the same font, and the
    # old bitmap font (accents stripped, "?" for the rest).
    unknown = comp_mod.text_label_patch(renderer, question_marks(name), rect.w, rect.h)
    bitmap = label_patch(name, rect.w, rect.h)
    error = np.abs(got - want).mean()
    assert error < 3, error  # the reference rendering, within the encoder's loss
    for other in (unknown, bitmap):
        h, w = min(other.shape[0], want.shape[0]), min(other.shape[1], want.shape[1])
        wrong = np.zeros_like(want)
        wrong[:] = rgb_to_yuv((24, 24, 24))[0]
        wrong[:h, :w] = other[:h, :w]
        assert np.abs(got - wrong).mean() > 4 * error + 5
    # Anti-aliased: edges have grey levels between the box and the text.
    assert ((want > 60) & (want < 200)).sum() > 20


def test_right_to_left_runs_are_shown_in_order(renderer):
    # An Arabic name with an emoji: the paragraph is right to left, so the emoji (typed last)
    # is on the left, in its own font.
    assert bidi("محمد 😀").levels == [1] * 6
    runs = renderer.visual_runs("محمد 😀")
    assert [r.text for r in runs] == ["😀", "محمد "] and runs[0].font != runs[1].font
    whole = renderer.render("محمد 😀", 24)
    emoji = renderer.render("😀", 24)
    assert np.abs(whole[:, : emoji.shape[1]].astype(int) - emoji).mean() < 2
    # Letters join (shaped): not the same as the letters kept apart by zero-width non-joiners.
    word = renderer.render("محمد", 24)
    apart = renderer.render("\u200c".join("محمد"), 24)
    assert word.shape != apart.shape or np.abs(word.astype(int) - apart).mean() > 10


# Runs from left to right: (text, script of the font, bidi level).
VISUAL_RUNS = {
    "Bob محمد 12": [("Bob ", "Latin", 0), ("12", "Latin", 2), ("محمد ", "Arabic", 1)],
    "محمد 😀": [("😀", "emoji", 1), ("محمد ", "Arabic", 1)],
    "Ada 😀 محمد": [("Ada ", "Latin", 0), ("😀 ", "emoji", 0), ("محمد", "Arabic", 1)],
    # Latin and European digits inside Arabic keep their own order, left of the Arabic.
    "علي Bob 42": [("Bob 42", "Latin", 2), ("علي ", "Arabic", 1)],
    # Arabic-Indic digits are a run of their own between the two Arabic words.
    "محمد ١٢ علي": [
        ("علي", "Arabic", 1),
        (" ", "Latin", 1),
        ("١٢", "Arabic", 2),
        ("محمد ", "Arabic", 1),
    ],
    # Bracket pairs (rule N0) take the direction around them: drawn right to left, mirrored.
    "שלום (Bob)": [
        (")", "Latin", 1),
        ("Bob", "Latin", 2),
        ("(", "Latin", 1),
        ("שלום ", "Hebrew", 1),
    ],
    # An emoji ZWJ sequence, a skin tone and a flag stay whole, in one font.
    "👨\u200d👩\u200d👧 Ana": [("👨\u200d👩\u200d👧 ", "emoji", 0), ("Ana", "Latin", 0)],
    "👍🏽 Bo": [("👍🏽 ", "emoji", 0), ("Bo", "Latin", 0)],
    # Combining marks stay in their letter's run: a decomposed é, Arabic vowel signs.
    "Zoe\u0301 Ñ": [("Zoe\u0301 Ñ", "Latin", 0)],
    "مُحَمَّد": [("مُحَمَّد", "Arabic", 1)],
}
FONT_OF_SCRIPT = {
    "Latin": "NotoSans-Regular",
    "Arabic": "NotoSansArabic",
    "Hebrew": "NotoSansHebrew",
    "emoji": ("DejaVuSans", "Symbola"),
}


@pytest.mark.parametrize("text", list(VISUAL_RUNS))
def test_runs_are_in_visual_order_with_one_font_each(renderer, text):
    got = [(r.text, renderer.fonts[r.font][0], r.level) for r in renderer.visual_runs(text)]
    want = VISUAL_RUNS[text]
    assert [(t, lv) for t, _, lv in got] == [(t, lv) for t, _, lv in want]
    for (_, path, _), (_, script, _) in zip(got, want, strict=True):
        assert any(name in path for name in np.atleast_1d(FONT_OF_SCRIPT[script])), (script, path)
    # Drawn as one line as wide as its runs.
    assert renderer.render(text, 24).shape[1] <= renderer.width(text, 24) + 2


GRAPHEMES = {
    "family": ("👨\u200d👩\u200d👧!", ["👨\u200d👩\u200d👧", "!"]),
    "skin tone": ("👍🏽a", ["👍🏽", "a"]),
    "flags": ("🇫🇷🇩🇪", ["🇫🇷", "🇩🇪"]),
    "combining acute": ("Zoe\u0301", ["Z", "o", "e\u0301"]),
    "stacked marks": ("a\u0301\u0323b", ["a\u0301\u0323", "b"]),
    "arabic vowels": ("مُحَ", ["مُ", "حَ"]),
    "devanagari conjunct": ("नमस्ते", ["न", "म", "स्ते"]),
    "emoji presentation": ("❤\ufe0f", ["❤\ufe0f"]),
}


@pytest.mark.parametrize("case", list(GRAPHEMES))
def test_user_perceived_characters_are_never_split(renderer, case):
    text, want = GRAPHEMES[case]
    assert graphemes(text) == want
    assert grapheme_starts(text) == [sum(map(len, want[:i])) for i in range(len(want) + 1)]
    # Every run ends on a boundary: a cluster is drawn by one font.
    ends = {r.start + len(r.text) for r in renderer.runs(text)}
    assert ends <= set(grapheme_starts(text))


def test_an_ellipsis_never_cuts_inside_an_emoji(renderer):
    family = "👨\u200d👩\u200d👧"
    name = "Ana " + family * 12
    size = 24
    cut = renderer.fit(name, size, renderer.render(name, size).shape[1] // 2)
    # Exactly a whole number of families, then the ellipsis.
    whole = [renderer.render("Ana " + family * k + ELLIPSIS, size) for k in range(12)]
    assert any(np.array_equal(cut, w) for w in whole)


def test_bidi_levels_follow_the_unicode_algorithm():
    assert bidi("").levels == []
    assert bidi("123").levels == [0, 0, 0]  # no strong letter: left to right
    # Explicit embeddings (RLE ... PDF) and isolates (RLI ... PDI) are honoured.
    assert bidi("a\u202bb\u202c").levels[2] == 2
    assert bidi("a\u2067bc\u2069d").levels[2:4] == [2, 2]
    # Trailing spaces take the paragraph level (rule L1).
    assert bidi("محمد  ").levels == [1] * 6 and bidi("Bob محمد ").levels[-1] == 0
    # The order shown: logical indices from left to right.
    assert bidi("Bob محمد").order == [0, 1, 2, 3, 7, 6, 5, 4]


def test_long_names_end_with_an_ellipsis_inside_the_tile(renderer):
    name = "Maximiliana Wolkenstein-Oberhausen von Niederschönfeld"
    patch = comp_mod.text_label_patch(renderer, name, 320, 180)
    margin = patch.shape[0] // 3 // 2 * 2
    assert patch.shape[1] <= 320 - 2 * margin
    size = comp_mod.label_size(180)
    full = renderer.render(name, size)
    cut = renderer.fit(name, size, 320 - 2 * margin - 2 * max(2, size // 4))
    assert cut.shape[1] < full.shape[1]
    # It is a start of the name followed by the ellipsis.
    tail = renderer.render(ELLIPSIS, size)
    assert np.abs(cut[:, -tail.shape[1] :].astype(int) - tail).mean() < 2
    assert np.array_equal(cut[:, :40], full[:, :40])


def test_placeholder_initials_in_every_script(renderer):
    assert initials("Zoë Ñúñez") == "Z\u200cÑ"
    assert initials("Зоя Петрова") == "З\u200cП"
    assert initials("王小明") == "王"
    assert initials("محمد علي") == "م\u200cع"
    comp = Compositor(640, 360, labels=False, renderer=renderer)
    out = comp.compose([Tile("a", "Зоя Петрова")]).to_ndarray(format="yuv420p")[:360].astype(int)
    rect = comp.layout["a"]
    alpha, dx, dy = comp._initials_mask("Зоя Петрова", rect.w, rect.h)
    cx, cy = rect.centre
    x, y = (cx - dx) // 2 * 2, (cy - dy) // 2 * 2
    got = out[y : y + alpha.shape[0], x : x + alpha.shape[1]]
    bg = rgb_to_yuv(comp_mod.placeholder_colour("Зоя Петрова"))[0]
    want = bg + (rgb_to_yuv((255, 255, 255))[0] - bg) * alpha.astype(float) / 255
    assert np.abs(got - want).max() <= 1
    other = renderer.render(initials("Zoe Petrova"), alpha.shape[0])  # Latin ZP: not drawn
    assert not np.array_equal(other, alpha)


def test_a_missing_font_setting_falls_back_to_the_installed_fonts(tmp_path, caplog):
    r = TextRenderer(tmp_path / "nope.ttf")
    assert r.available and "is not a file" in caplog.text
    dejavu = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    chosen = TextRenderer(Path(dejavu))  # recording.font: first, the others behind it
    assert chosen.fonts[0][0] == dejavu and len(chosen.fonts) == len(r.fonts)
    assert chosen.runs("Zoë")[0].font == 0 and chosen.runs("王")[0].font > 0
