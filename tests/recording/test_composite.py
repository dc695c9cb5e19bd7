"""End-to-end: synthetic publishers in, a real file out, decoded back with PyAV."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from sfu.recording import Recorder
from sfu.recording.compositor import compute_layout
from sfu.recording.timeline import ManualClock
from sfu.settings import RecordingSettings
from tests.recording.recsynth import (
    BLUE,
    GREEN,
    RED,
    decode,
    drive,
    feeds,
    level_at,
    opus_frames,
    packet_actions,
    tone,
    vp8_frames,
)

W, H, FPS = 640, 360, 30


def close_to(rgb: np.ndarray, want: tuple[int, int, int], tol: float = 40) -> bool:
    return bool(np.abs(rgb - np.array(want)).max() < tol)


@pytest.fixture(scope="module")
def grid_recording(tmp_path_factory):
    """A leaves at 8 s, C joins late at 4 s; 12 s recorded in simulated time."""
    directory = tmp_path_factory.mktemp("rec")
    settings = RecordingSettings(directory=directory, width=W, height=H, fps=FPS, layout="grid")
    clock = ManualClock()
    stopped: list[str] = []
    rec = Recorder("team room", settings, clock=clock, on_stopped=stopped.append)
    items = (
        feeds("a", vp8_frames(lambda t: RED, 0.2, 7.8), "video")
        + feeds("a", opus_frames(tone(440), 0.2, 7.8), "audio")
        + feeds("b", vp8_frames(lambda t: GREEN, 0.2, 11.8, ts0=4_294_000_000), "video")
        + feeds("b", opus_frames(tone(660), 0.2, 11.8, ts0=4_294_900_000), "audio")
        + feeds("c", vp8_frames(lambda t: BLUE, 4.1, 7.9), "video")
        + feeds("c", opus_frames(tone(880), 4.1, 7.9), "audio")
    )
    script = packet_actions(rec, items) + [
        (0.0, lambda: rec.participant_joined("a", "Ada")),
        (0.0, lambda: rec.participant_joined("b", "Bob")),
        (4.0, lambda: rec.participant_joined("c", "Cleo")),
        (8.0, lambda: rec.participant_left("a")),
    ]
    drive(rec, clock, script, end=12.0)
    return rec, stopped


@pytest.fixture(scope="module")
def grid_audio(grid_recording):
    return decode(grid_recording[0].path, [(10, 10)])


def test_file_is_named_and_described(grid_recording):
    rec, stopped = grid_recording
    assert stopped == ["stopped"] and rec.state == "stopped"
    assert rec.path.name.startswith("team_room-") and rec.path.suffix == ".mp4"
    meta = json.loads(rec.path.with_suffix(".json").read_text())
    assert meta["state"] == "stopped" and meta["duration"] == pytest.approx(12.0)
    assert meta["size"] == rec.path.stat().st_size > 0
    names = {p["name"]: p["sessions"] for p in meta["participants"]}
    assert names["Ada"][0]["left_offset"] == pytest.approx(8.0)
    assert names["Cleo"][0]["joined_offset"] == pytest.approx(4.0)
    assert (meta["video_codec"], meta["audio_codec"]) == ("libx264", "aac")


def test_constant_frame_rate_and_duration(grid_audio):
    out = grid_audio
    assert (out.width, out.height) == (W, H)
    assert (out.video_codec, out.audio_codec) == ("h264", "aac")
    assert len(out.times) == 12 * FPS
    assert np.allclose(np.diff(out.times), 1 / FPS, atol=1e-3)
    assert out.times[0] == pytest.approx(0.0)
    assert out.duration == pytest.approx(12.0, rel=0.01)
    assert len(out.audio) / 48000 == pytest.approx(12.0, rel=0.01)


def test_tiles_follow_joins_and_leaves(grid_recording):
    rec, _ = grid_recording
    phases = {
        2.0: (["a", "b"], {"a": RED, "b": GREEN}),
        6.0: (["a", "b", "c"], {"a": RED, "b": GREEN, "c": BLUE}),
        10.0: (["b", "c"], {"b": GREEN, "c": BLUE}),
    }
    probes: list[tuple[int, int]] = []
    expected: list[tuple[float, int, tuple[int, int, int]]] = []
    for t, (users, colours) in phases.items():
        layout = compute_layout([(u, "camera") for u in users], W, H, "grid")
        for u in users:
            r = layout[(u, "camera")]
            probes.append((r.x + r.w // 2, r.y + r.h // 3))  # above the name label
            expected.append((t, len(probes) - 1, colours[u]))
    out = decode(rec.path, probes)
    for t, probe, colour in expected:
        frame = round(t * FPS)
        assert close_to(out.samples[frame][probe], colour), (t, probe, out.samples[frame][probe])
    # Where A's tile was at 2 s, B's (green) tile sits after A left: the grid closed up.
    assert close_to(out.samples[round(10 * FPS)][0], GREEN)
    # Before C joined, the 3-tile slot of C shows no blue.
    assert not close_to(out.samples[round(2 * FPS)][4], BLUE)


def test_mixed_audio_holds_each_voice(grid_audio):
    a = grid_audio.audio
    heard = {f: level_at(a, f, 1.0, 3.0) for f in (440, 660, 880)}
    # Each voice keeps its level (0.4) while the sum stays below the limiter's knee.
    assert heard[440] == pytest.approx(0.4, abs=0.04) and heard[660] == pytest.approx(0.4, abs=0.04)
    assert heard[880] < 0.02, heard
    heard = {f: level_at(a, f, 5.0, 7.0) for f in (440, 660, 880)}
    assert min(heard.values()) > 0.3, heard
    heard = {f: level_at(a, f, 9.0, 11.0) for f in (440, 660, 880)}
    assert heard[440] < 0.02 and min(heard[660], heard[880]) > 0.36, heard
    # Three voices at 0.4 sum to 1.2: limited, never clipped or wrapped around.
    assert np.abs(a).max() < 0.99
    assert np.abs(a[int(5 * 48000) : int(7 * 48000)]).max() > 0.6


def test_defaults_make_a_fragmented_720p30_mp4_with_a_keyframe_a_second(tmp_path):
    clock = ManualClock()
    rec = Recorder("defaults", RecordingSettings(directory=tmp_path), clock=clock)
    items = feeds("a", vp8_frames(lambda t: BLUE, 0.0, 3.0), "video")
    drive(rec, clock, packet_actions(rec, items), end=3.0)
    data = rec.path.read_bytes()
    assert data[4:8] == b"ftyp" and data.count(b"moof") >= 3  # one fragment per second
    out = decode(rec.path, [(640, 300)])
    assert (out.width, out.height, len(out.times)) == (1280, 720, 90)
    assert close_to(out.samples[45][0], BLUE)
    with av.open(str(rec.path)) as c:
        keys = [i for i, p in enumerate(c.demux(video=0)) if p.size and p.is_keyframe]
    assert keys == [0, 30, 60]
