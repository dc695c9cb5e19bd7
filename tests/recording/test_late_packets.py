"""Packets that come late: a publisher whose delay grows for good, and people present at start.

Found by the Chromium end-to-end recording test (tests/e2e/test_recording_room.py): on a busy
server, packets reached the recorder up to 0.9 s after their place on the timeline. Audio
later than the latency (0.3 s) misses its place; a track whose delay grew by less than the
1 s jump threshold used to stay silent for the rest of the recording.
"""

from __future__ import annotations

import numpy as np
import pytest

from sfu.recording import Recorder
from sfu.recording.timeline import ManualClock, TrackClock
from sfu.settings import RecordingSettings
from tests.recording.recsynth import (
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


def on_time(clock: TrackClock, until: float = 1.0) -> None:
    for m in np.arange(0.0, until, 0.02):
        assert clock.map(m, m + 0.05, late=0.3) == pytest.approx(m + 0.05)


def test_track_clock_follows_a_delay_that_grew_for_good():
    clock = TrackClock()
    on_time(clock)
    # From 1 s on every packet comes 0.6 s later: within the jump threshold, past the latency.
    at = [clock.map(m, m + 0.65, late=0.3) for m in np.arange(1.0, 2.0, 0.02)]
    assert at[0] == pytest.approx(1.05)  # a hiccup at first: the mapping stays
    assert at[-1] == pytest.approx(1.98 + 0.65)  # then it follows the new delay


@pytest.mark.parametrize("stall", [0.6, 1.5])
def test_track_clock_keeps_its_mapping_through_a_stall(stall):
    # The server stalls: packets wait, then come all at once (1.5 s: more than the jump).
    clock = TrackClock()
    on_time(clock)
    sent = np.arange(1.0, 0.95 + stall, 0.02)  # sent before the stall ended
    burst = [clock.map(m, 1.0 + stall, late=0.3) for m in sent]
    assert burst == pytest.approx(list(sent + 0.05))
    assert clock.map(1.0 + stall, 1.05 + stall, late=0.3) == pytest.approx(1.05 + stall)
    # A publisher restarting its stream (new timestamps) is anchored afresh.
    assert clock.map(500.0, 3.0, late=0.3) == pytest.approx(3.0)


def test_a_voice_whose_delay_grows_is_heard_again(tmp_path):
    settings = RecordingSettings(directory=tmp_path, width=320, height=180, fps=10)
    clock = ManualClock()
    rec = Recorder("late", settings, clock=clock)
    late = feeds("b", opus_frames(tone(660), 0.0, 8.0), "audio")
    for f in late:
        if f.at >= 3.0:
            f.at += 0.6  # b's path slows down at 3 s and stays slow
    items = feeds("a", opus_frames(tone(440), 0.0, 8.0), "audio") + late
    drive(rec, clock, packet_actions(rec, items), end=9.0, participants=[("a", "A"), ("b", "B")])
    audio = decode(rec.path, [(160, 90)]).audio
    assert level_at(audio, 660, 1.0, 2.5) > 0.3
    # Lost while the new delay is learnt (the hold, and the 0.6 s it moved), then heard.
    assert level_at(audio, 660, 5.0, 8.0) > 0.3
    assert level_at(audio, 440, 1.0, 8.0) > 0.3
    # And never summed with itself where the mapping moved: no louder than it was sent.
    assert level_at(audio, 660, 5.0, 8.0) < 0.45


def test_a_voice_whose_delay_shrinks_is_not_doubled(tmp_path):
    settings = RecordingSettings(directory=tmp_path, width=320, height=180, fps=10)
    clock = ManualClock()
    rec = Recorder("early", settings, clock=clock)
    items = feeds("a", opus_frames(tone(440), 0.0, 6.0), "audio")
    for f in items:
        if f.at < 2.0:
            f.at += 0.25  # slower at first, within the latency; then 0.25 s quicker
    drive(rec, clock, packet_actions(rec, items), end=6.5, participants=[("a", "A")])
    audio = decode(rec.path, [(160, 90)]).audio
    for start in np.arange(0.5, 5.5, 0.25):
        assert level_at(audio, 440, start, start + 0.25) < 0.45, start
    assert np.abs(audio).max() < 0.5


def test_those_present_at_start_are_shown_from_the_first_picture(tmp_path):
    settings = RecordingSettings(
        directory=tmp_path, width=320, height=180, fps=10, labels=False, background="#0000ff"
    )
    clock = ManualClock()
    rec = Recorder("start", settings, clock=clock)
    items = feeds("a", vp8_frames(lambda t: RED, 0.0, 3.0), "video") + feeds(
        "b", vp8_frames(lambda t: GREEN, 0.5, 2.5), "video"
    )
    # Opening the file took 0.4 s: the room layer tells who came meanwhile when it is back.
    script = packet_actions(rec, items) + [(0.4, lambda: rec.participant_joined("b", "Bo"))]
    drive(rec, clock, script, end=3.0, participants=[("a", "Ada")])
    sessions = {p["name"]: p["sessions"] for p in rec.metadata()["participants"]}
    assert sessions["Ada"][0]["joined_offset"] == 0.0
    assert sessions["Bo"][0]["joined_offset"] == 0.4
    out = decode(rec.path, [(160, 90)])
    # Ada's tile from the first picture (no empty canvas), alone until Bo came.
    assert np.abs(out.samples[0][0] - (0, 0, 255)).max() > 80
    assert np.abs(out.samples[2][0] - RED).max() < 40
