"""A full disk, an encoder error or a SIGKILL: the recording ends cleanly and stays playable."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections import namedtuple
from pathlib import Path

import av
import numpy as np

from sfu.recording import Recorder, RecordingStore
from sfu.recording import recorder as recorder_mod
from sfu.recording.timeline import ManualClock
from sfu.settings import RecordingSettings
from tests.recording.recsynth import (
    GREEN,
    RED,
    decode,
    drive,
    feeds,
    opus_frames,
    packet_actions,
    tone,
    vp8_frames,
)

HERE = Path(__file__).parent


def _items():
    return feeds("g", vp8_frames(lambda t: GREEN, 0.0, 6.0), "video") + feeds(
        "g", opus_frames(tone(660), 0.0, 6.0), "audio"
    )


def _fail_after(rec: Recorder, frames: int, exc: Exception) -> None:
    writer = rec._writer
    original = writer.write_video

    def write_video(frame, index):
        if index >= frames:
            raise exc
        original(frame, index)

    writer.write_video = write_video


def _run_failing(tmp_path: Path, exc: Exception) -> tuple[Recorder, list[str]]:
    settings = RecordingSettings(directory=tmp_path, width=320, height=180, fps=10)
    clock = ManualClock()
    stopped: list[str] = []
    rec = Recorder("full", settings, clock=clock, on_stopped=stopped.append)
    script = packet_actions(rec, _items()) + [(0.0, lambda: _fail_after(rec, 35, exc))]
    drive(rec, clock, script, end=6.0)
    return rec, stopped


def test_full_disk_stops_with_a_reason_and_a_playable_file(tmp_path):
    rec, stopped = _run_failing(tmp_path, OSError(28, "No space left on device"))
    assert stopped == ["disk full"]
    assert rec.state == "error" and rec.error == "disk full"
    meta = json.loads(rec.path.with_suffix(".json").read_text())
    assert meta["state"] == "error" and meta["stop_reason"] == "disk full"
    out = decode(rec.path, [(160, 90)])
    assert 20 <= len(out.times) <= 35  # up to the failure, less what the encoder held
    assert np.abs(out.samples[len(out.times) // 2][0] - GREEN).max() < 40


def test_encoder_error_stops_the_recording(tmp_path):
    rec, stopped = _run_failing(tmp_path, av.error.FFmpegError(-1, "boom"))
    assert len(stopped) == 1 and stopped[0].startswith("encoder error")
    assert rec.state == "error"
    assert len(decode(rec.path, [(160, 90)]).times) >= 20


def test_low_free_space_stops_before_the_disk_is_full(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(recorder_mod.shutil, "disk_usage", lambda p: usage(10, 10, 0))
    settings = RecordingSettings(directory=tmp_path, width=320, height=180, fps=10)
    stopped: list[str] = []
    rec = Recorder("low", settings, on_stopped=stopped.append)
    rec.start()
    rec._thread.join(5)
    assert stopped == ["disk full"] and rec.state == "error"


async def test_on_stopped_is_delivered_on_the_event_loop(tmp_path):
    settings = RecordingSettings(directory=tmp_path, width=320, height=180, fps=10)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str] = loop.create_future()
    rec = Recorder("loop", settings, on_stopped=done.set_result, loop=loop)
    rec.start()
    await rec.stop_async()
    assert await asyncio.wait_for(done, 5) == "stopped"


def test_sigkill_leaves_a_file_playable_until_shortly_before(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(HERE.parent.parent))
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.recording.crash_child", str(tmp_path), "5.0"],
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
    out = decode(path, [(160, 90)])
    # Lost at most: 1 s latency + x264's ~0.4 s delay + a 1 s fragment (+ slack for load).
    assert out.times[-1] >= 2.5, out.times[-1]
    assert np.allclose(np.diff(out.times), 1 / 30, atol=1e-3)
    assert len(out.audio) / 48000 >= 2.5
    assert np.abs(out.samples[-1][0] - RED).max() < 40
    store = RecordingStore(tmp_path)
    [meta] = store.list()
    assert meta["state"] == "interrupted" and meta["size"] > 0 and meta["duration"] is None
    # At start-up the server closes the books: the playable duration goes into the sidecar,
    # and the recordings list says so.
    from tests.server.test_shutdown import start_server

    env = {"SFU_RECORDING__DIRECTORY": str(tmp_path), "SFU_AUTH__ADMIN_TOKEN": "t"}
    server, url = start_server(env=env)
    try:
        request = urllib.request.Request(
            url + "/api/recordings", headers={"Authorization": "Bearer t"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            [listed] = json.loads(response.read())["recordings"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(15)
    assert "recovered 1 interrupted recordings" in (server.stdout.read() if server.stdout else "")
    [meta] = store.list()
    assert meta["state"] == "interrupted" and listed["id"] == meta["id"]
    assert abs(meta["duration"] - (out.times[-1] + 1 / 30)) < 0.1
    assert abs(listed["duration"] - meta["duration"]) < 1e-6
    assert meta["end"] > meta["start"]
