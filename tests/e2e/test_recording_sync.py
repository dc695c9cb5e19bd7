"""Lip sync through the whole browser path: a Chromium participant whose camera flashes white
when its microphone beeps, recorded on the server; in the file each flash and its beep land
together.

Chromium's fake camera and microphone loop their files (here 2 s each, the flash and the beep
at the same offset), so the pair repeats every 2 s. The fake microphone keeps time, the fake
camera does not: its loop takes 2.03-2.07 s on this machine, so at the source the flash
drifts against the beep by 33-67 ms per loop. Also, the recorder places a publisher's tracks
by arrival until its first RTCP sender report and by the reports' capture times after that
(Chromium sends an audio report only every few seconds), which moves the beeps once by about
50 ms. Hence 150 ms per pair (measured: up to 105 ms). The recorder's own 40 ms is tested
with exact synthetic publishers in tests/recording/test_sync_layouts.py; this test catches a
gross browser-path desync those cannot see.
"""

from __future__ import annotations

import math
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from tests.e2e.conftest import (
    OUTPUT_DIR,
    LaunchFn,
    ServerProcess,
    rgb_to_yuv601,
    start_server,
    stop_server,
    wait_until,
)
from tests.e2e.test_recording_room import fetch_file

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]

LOOP_SECONDS = 2.0
FLASH_AT = 1.0  # seconds into each loop
FLASH_SECONDS = 0.1
FPS = 30
W, H = 320, 240
RATE = 48_000
TOLERANCE = 0.150  # see the module docstring


@pytest.fixture(scope="module")
def e2e_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # 30 pictures a second: one picture is 33 ms, inside the tolerance.
    env = {
        "SFU_RECORDING__WIDTH": str(W),
        "SFU_RECORDING__HEIGHT": str(H),
        "SFU_RECORDING__FPS": str(FPS),
        "SFU_RECORDING__LABELS": "false",
    }
    server = start_server(tmp_path_factory.mktemp("sync-server"), env)
    yield server
    stop_server(server)


def flash_files(folder: Path) -> tuple[Path, Path]:
    video, audio = folder / "flash.y4m", folder / "beep.wav"
    dark, white = rgb_to_yuv601((40, 40, 40)), rgb_to_yuv601((255, 255, 255))
    with video.open("wb") as f:
        f.write(f"YUV4MPEG2 W{W} H{H} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(int(LOOP_SECONDS * FPS)):
            y, u, v = white if FLASH_AT <= i / FPS < FLASH_AT + FLASH_SECONDS else dark
            f.write(b"FRAME\n")
            f.write(np.full((H, W), y, np.uint8).tobytes())
            f.write(np.full((H // 2, W // 2), u, np.uint8).tobytes())
            f.write(np.full((H // 2, W // 2), v, np.uint8).tobytes())
    t = np.arange(int(LOOP_SECONDS * RATE)) / RATE
    beep = (t >= FLASH_AT) & (t < FLASH_AT + FLASH_SECONDS)
    samples = np.where(beep, 0.5 * np.sin(2 * math.pi * 1000 * t), 0.0)
    with wave.open(str(audio), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((samples * 32767).astype("<i2").tobytes())
    return video, audio


def onsets(times: np.ndarray, level: np.ndarray, threshold: float) -> list[float]:
    """Times where ``level`` rises through ``threshold``, at least 1 s apart."""
    out: list[float] = []
    above = level >= threshold
    for i in np.flatnonzero(above[1:] & ~above[:-1]) + 1:
        if not out or times[i] - out[-1] > 1.0:
            out.append(float(times[i]))
    return out


def test_flash_and_beep_stay_together_in_the_recording(
    netns: None,
    e2e_server: ServerProcess,
    launch: LaunchFn,
    tmp_path: Path,
) -> None:
    video, audio = flash_files(tmp_path)
    room_id = e2e_server.create_room("sfu")
    alice = launch(
        "Alice",
        room=room_id,
        extra_args=[  # Chromium takes the last value of a repeated switch
            f"--use-file-for-fake-video-capture={video}",
            f"--use-file-for-fake-audio-capture={audio}",
        ],
    )
    alice.wait_joined()
    wait_until(
        lambda: len(e2e_server.room_media(room_id)["producers"]) == 2,
        what="Alice's camera and microphone at the server",
    )
    started = e2e_server.admin("POST", f"/api/rooms/{room_id}/recording", {})
    time.sleep(4.5)  # short: the fake camera drifts about 1.6% against the microphone
    e2e_server.admin("DELETE", f"/api/rooms/{room_id}/recording")
    path = fetch_file(e2e_server, started["recordingId"], tmp_path / "sync.mp4")
    OUTPUT_DIR.mkdir(exist_ok=True)
    (OUTPUT_DIR / "recording-sync.mp4").write_bytes(path.read_bytes())

    with av.open(str(path)) as container:
        frames = [
            (float(f.time), float(f.to_ndarray(format="gray").mean()))
            for f in container.decode(video=0)
        ]
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        chunks = [
            out.to_ndarray().reshape(-1)
            for frame in container.decode(audio=0)
            for out in resampler.resample(frame)
        ]
    samples = np.concatenate(chunks)
    luma = np.array([v for _, v in frames])
    flashes = onsets(np.array([t for t, _ in frames]), luma, (luma.min() + luma.max()) / 2)
    window = RATE // 200  # 5 ms of RMS
    rms = np.sqrt(np.mean(samples[: len(samples) // window * window].reshape(-1, window) ** 2, 1))
    beeps = onsets(np.arange(len(rms)) * window / RATE, rms, rms.max() / 2)
    assert len(flashes) >= 2 and len(beeps) >= 2, (flashes, beeps)
    offsets = [min((b - f for b in beeps), key=abs) for f in flashes]
    paired = [o for o in offsets if abs(o) < LOOP_SECONDS / 2]
    assert len(paired) >= 2, (flashes, beeps)
    print("flash-to-beep offsets (s):", [round(o, 3) for o in paired], flashes, beeps)
    assert max(abs(o) for o in paired) <= TOLERANCE, (paired, flashes, beeps)
