"""Audio-only recordings (``layout = "audio"``): the mixed audio in Opus/Ogg or AAC/M4A, no
video stream, each voice where it was spoken, the wall-clock duration, and a file that a
SIGKILL leaves playable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from sfu.recording import Recorder, RecordingStore
from sfu.recording.timeline import ManualClock
from sfu.settings import RecordingSettings
from tests.recording.recsynth import (
    GREEN,
    RED,
    drive,
    feeds,
    level_at,
    opus_frames,
    packet_actions,
    tone,
    vp8_frames,
)

HERE = Path(__file__).parent
CODECS = {"ogg": ("ogg", "opus"), "m4a": ("mov,mp4,m4a,3gp,3g2,mj2", "aac")}


def decode_audio(path: Path) -> tuple[np.ndarray, float, int]:
    """Mono samples from the file's first audio sample on, its start time, video streams."""
    chunks = []
    start = None
    with av.open(str(path)) as c:
        videos = len(c.streams.video)
        for frame in c.decode(audio=0):
            if start is None:
                start = float(frame.time)
            pcm = frame.to_ndarray()
            chunks.append(pcm[0] if frame.format.is_planar else pcm.reshape(-1))
    return np.concatenate(chunks), start or 0.0, videos


@pytest.mark.parametrize("audio_format", ["ogg", "m4a"])
def test_audio_only_holds_each_voice_for_the_wall_clock_duration(tmp_path, audio_format):
    settings = RecordingSettings(directory=tmp_path, layout="audio", audio_format=audio_format)
    clock = ManualClock()
    rec = Recorder("talk", settings, clock=clock)
    # Ada speaks 0.5-4.5 s, Bob 3-8 s; both also send video, which an audio file leaves out.
    items = (
        feeds("a", opus_frames(tone(440, 0.3), 0.5, 4.0), "audio")
        + feeds("a", vp8_frames(lambda t: RED, 0.5, 4.0), "video")
        + feeds("b", opus_frames(tone(660, 0.3), 3.0, 5.0, ts0=4_294_900_000), "audio")
        + feeds("b", vp8_frames(lambda t: GREEN, 3.0, 5.0), "video")
    )
    drive(rec, clock, packet_actions(rec, items), end=9.0, participants=[("a", "Ada")])
    assert rec.state == "stopped" and rec.path is not None
    assert rec.path.suffix == f".{audio_format}"
    fmt, codec = CODECS[audio_format]
    with av.open(str(rec.path)) as c:
        assert c.format.name == fmt and c.streams.audio[0].codec_context.name == codec
    audio, start, videos = decode_audio(rec.path)
    assert videos == 0
    # The first decoded sample is timeline time ``start`` (AAC: after its priming samples).
    offset = start

    def level(freq: float, a: float, b: float) -> float:
        return level_at(audio, freq, a - offset, b - offset)

    assert level(440, 1.0, 2.8) > 0.2 and level(660, 1.0, 2.8) < 0.01
    assert level(440, 3.5, 4.3) > 0.2 and level(660, 3.5, 4.3) > 0.2
    assert level(440, 5.0, 7.8) < 0.01 and level(660, 5.0, 7.8) > 0.2
    assert np.abs(audio).max() <= 1.0
    assert abs(start + len(audio) / 48000 - 9.0) < 0.09  # duration within 1%
    meta = rec.metadata()
    assert meta["layout"] == "audio" and meta["container"] == audio_format
    assert meta["video_codec"] is None and meta["width"] is None
    assert abs(meta["duration"] - 9.0) < 0.01
    assert RecordingStore(tmp_path).file_path(meta["id"]) == rec.path


@pytest.mark.parametrize("audio_format", ["ogg", "m4a"])
def test_sigkill_leaves_an_audio_file_playable(tmp_path, audio_format):
    env = dict(os.environ, PYTHONPATH=str(HERE.parent.parent))
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.recording.crash_child", str(tmp_path), "5.0", audio_format],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        line = child.stdout.readline()  # printed 5 s into the recording
        assert line, "child died before it was ready"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    path = Path(line.strip())
    assert path.suffix == f".{audio_format}"
    audio, start, _ = decode_audio(path)
    # Lost at most: 1 s latency + the page or fragment being filled (+ slack for load).
    kept = len(audio) / 48000
    assert kept >= 2.5, kept
    assert level_at(audio, 440, 1.0 - start, kept - 0.2) > 0.2
    store = RecordingStore(tmp_path)
    [meta] = store.list()
    assert meta["state"] == "interrupted" and meta["size"] > 0
    assert store.recover() == [meta["id"]]
    [meta] = store.list()
    assert abs(meta["duration"] - (start + kept)) < 0.3, (meta["duration"], start + kept)
