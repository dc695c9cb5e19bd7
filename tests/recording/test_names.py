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
from sfu.recording.text import ELLIPSIS, TextRenderer, bidi_levels, initials, visual_order
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
    # is on the left; Latin and digits inside Arabic keep their own order.
    assert bidi_levels("محمد 😀") == [1] * 6
    runs = renderer.runs("محمد 😀")
    assert [r.level for r in runs] == [1, 1] and runs[0].font != runs[1].font
    assert visual_order([r.level for r in runs]) == [1, 0]
    whole = renderer.render("محمد 😀", 24)
    emoji = renderer.render("😀", 24)
    assert np.abs(whole[:, : emoji.shape[1]].astype(int) - emoji).mean() < 2
    assert visual_order([0, 1, 2]) == [0, 2, 1]  # "Bob محمد 12": Bob, 12, then the Arabic
    # Letters join (shaped): not the same as the letters kept apart by zero-width non-joiners.
    word = renderer.render("محمد", 24)
    apart = renderer.render("\u200c".join("محمد"), 24)
    assert word.shape != apart.shape or np.abs(word.astype(int) - apart).mean() > 10


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
