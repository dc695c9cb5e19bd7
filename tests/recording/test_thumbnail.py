"""A recording's thumbnail (a JPEG of the middle of the finished file), its status while it is
finished after a stop (``finishing`` with progress, then ``ready``), the names in its
metadata, and the thumbnail route (#18)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import av
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from sfu.recording import Recorder, RecordingStore
from sfu.recording import thumbnail as thumbnail_mod
from sfu.recording.compositor import compute_layout
from sfu.recording.store import status_of
from sfu.recording.timeline import ManualClock
from sfu.server.recording_routes import Grant, add_routes
from sfu.settings import RecordingSettings
from tests.recording.recsynth import BLUE, GREEN, RED, drive, feeds, packet_actions, vp8_frames

W, H, FPS = 640, 360, 15
INFO = {
    "roomName": "Weekly design review",
    "startedBy": "a",
    "startedByName": "Ada",
    "stoppedBy": None,
    "stoppedByName": None,
}


def picture(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24")


def close_to(rgb: np.ndarray, want: tuple[int, int, int], tol: float = 40) -> bool:
    return bool(np.abs(rgb.astype(int) - np.array(want)).max() < tol)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Recorder:
    """Ada is red for 4.5 s, then blue; Bob green; 10 s recorded (the middle: 5 s, blue)."""
    directory = tmp_path_factory.mktemp("rec")
    settings = RecordingSettings(directory=directory, width=W, height=H, fps=FPS, layout="grid")
    clock = ManualClock()
    rec = Recorder("review", settings, clock=clock, info=INFO)
    items = feeds("a", vp8_frames(lambda t: RED if t < 4.3 else BLUE, 0.2, 9.8), "video") + feeds(
        "b", vp8_frames(lambda t: GREEN, 0.2, 9.8, ts0=4_294_000_000), "video"
    )
    script = [
        *packet_actions(rec, items),
        (0.0, lambda: rec.participant_joined("a", "Ada")),
        (0.0, lambda: rec.participant_joined("b", "Bob")),
        (6.0, lambda: rec.participant_left("b")),
        (7.0, lambda: rec.participant_joined("b", "Bob")),  # a rejoin: named once
        (9.5, lambda: rec.stopped_by("b", "Bob")),
    ]
    drive(rec, clock, script, end=10.0)
    return rec


def test_the_thumbnail_is_the_middle_of_the_file(finished: Recorder) -> None:
    assert finished.state == "stopped" and finished.path is not None
    meta = json.loads(finished.path.with_suffix(".json").read_text())
    assert meta["thumbnail"] == f"{finished.id}.thumb.jpg"
    jpeg = finished.path.with_name(meta["thumbnail"])
    assert jpeg.read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG
    assert jpeg.stat().st_size < 30_000
    pixels = picture(jpeg)
    assert pixels.shape == (180, 320, 3)  # 320 wide, the recording's 16:9
    scale = 320 / W
    layout = compute_layout([("a", "camera"), ("b", "camera")], W, H, "grid")
    for user, want in (("a", BLUE), ("b", GREEN)):  # Ada blue: from the middle, not the start
        r = layout[(user, "camera")]
        x, y = int((r.x + r.w / 2) * scale), int((r.y + r.h / 3) * scale)
        assert close_to(pixels[y, x], want), (user, pixels[y, x])


def test_the_metadata_names_the_meeting_and_the_people(finished: Recorder) -> None:
    assert finished.path is not None
    meta = json.loads(finished.path.with_suffix(".json").read_text())
    assert meta["roomName"] == "Weekly design review"
    assert (meta["startedBy"], meta["startedByName"]) == ("a", "Ada")
    assert (meta["stoppedBy"], meta["stoppedByName"]) == ("b", "Bob")
    assert meta["participantNames"] == ["Ada", "Bob"]
    assert meta["duration"] == pytest.approx(10.0) and meta["size"] > 0
    assert finished.live_status()["status"] == "ready"
    listed = RecordingStore(finished.path.parent).get(str(finished.id))
    assert listed is not None and listed["status"] == "ready" and listed["progress"] is None


def test_finishing_reports_progress_until_ready(tmp_path: Path) -> None:
    """A stop while the worker is a minute behind: ``finishing`` with a rising progress."""
    settings = RecordingSettings(directory=tmp_path, width=320, height=240, fps=FPS, layout="grid")
    clock = ManualClock()
    rec = Recorder("slow", settings, clock=clock, info=INFO)
    rec.start([("a", "Ada")])
    assert rec.live_status() == {"status": "recording", "progress": None}
    clock.advance(90.0)  # ninety seconds to write, all at once
    rec.request_stop("stopped")
    seen: list[dict] = []
    deadline = time.monotonic() + 60
    while rec.live_status()["status"] == "finishing" and time.monotonic() < deadline:
        seen.append(rec.live_status())
        time.sleep(0.05)
    rec.stop()
    assert rec.live_status()["status"] == "ready"
    progress = [s["progress"] for s in seen if s["status"] == "finishing"]
    assert progress, "never seen finishing"
    assert progress == sorted(progress) and 0 <= progress[0] < 1, progress
    assert all(s["duration"] == pytest.approx(90.0) for s in seen)
    assert rec.thumbnail is not None and (tmp_path / rec.thumbnail).is_file()


def test_an_audio_only_recording_has_no_thumbnail(tmp_path: Path) -> None:
    settings = RecordingSettings(directory=tmp_path, layout="audio")
    clock = ManualClock()
    rec = Recorder("talk", settings, clock=clock)
    drive(rec, clock, [], end=2.0)
    assert rec.state == "stopped" and rec.thumbnail is None
    assert rec.metadata()["thumbnail"] is None


def test_status_without_a_recorder() -> None:
    assert status_of({"state": "recording"}, True)["status"] == "recording"
    assert status_of({"state": "stopped"}, True)["status"] == "finishing"  # finalize runs
    assert status_of({"state": "stopped"}, False)["status"] == "ready"
    assert status_of({"state": "interrupted"}, False)["status"] == "ready"  # fragments play
    assert status_of({"state": "error"}, False)["status"] == "failed"


# -- the route -------------------------------------------------------------------------------
def _authorize(request: web.Request) -> Grant | None:
    token = request.headers.get("Authorization", "")[7:] or request.query.get("token", "")
    if token == "admin":
        return Grant(admin=True, reads=lambda meta: True)
    if token == "room":
        return Grant(admin=False, reads=lambda meta: meta.get("room") == "review")
    return None


async def test_the_thumbnail_route(finished: Recorder, tmp_path: Path) -> None:
    assert finished.path is not None
    directory = finished.path.parent
    store = RecordingStore(directory)
    app = web.Application()
    add_routes(app, store, _authorize)
    rid = str(finished.id)
    url = f"/api/recordings/{rid}/thumbnail"
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert (await client.get(url)).status == 401
        assert (await client.get(url, params={"token": "nobody"})).status == 401
        answer = await client.get(url, params={"token": "room"})  # as an <img src>
        assert answer.status == 200 and answer.content_type == "image/jpeg"
        assert await answer.read() == (directory / f"{rid}.thumb.jpg").read_bytes()
        answer = await client.get(url, headers={"Authorization": "Bearer admin"})
        assert answer.status == 200
        missing = await client.get("/api/recordings/nope-1/thumbnail", params={"token": "room"})
        assert missing.status == 404 and (await missing.json())["error"] == "unknown_recording"
        bad = await client.get("/api/recordings/a.b/thumbnail", params={"token": "room"})
        assert bad.status == 400

        # Not (yet) made: 404 not_found. A sidecar naming another file, or a symlink in its
        # place, counts as none.
        sidecar = directory / f"{rid}.json"
        meta = json.loads(sidecar.read_text())
        sidecar.write_text(json.dumps({**meta, "thumbnail": None}))
        answer = await client.get(url, params={"token": "room"})
        assert answer.status == 404 and (await answer.json())["error"] == "not_found"
        sidecar.write_text(json.dumps({**meta, "thumbnail": "../../etc/passwd"}))
        assert (await client.get(url, params={"token": "room"})).status == 404
        sidecar.write_text(json.dumps(meta))
        jpeg = directory / f"{rid}.thumb.jpg"
        kept = tmp_path / "kept.jpg"
        os.replace(jpeg, kept)
        os.symlink(kept, jpeg)
        assert (await client.get(url, params={"token": "room"})).status == 404
        jpeg.unlink()
        os.replace(kept, jpeg)
        assert (await client.get(url, params={"token": "room"})).status == 200


def test_deleting_a_recording_deletes_its_thumbnail(finished: Recorder) -> None:
    assert finished.path is not None
    jpeg = thumbnail_mod.path_for(finished.path)
    assert jpeg.is_file()
    assert RecordingStore(finished.path.parent).delete(str(finished.id))
    assert not jpeg.exists() and not finished.path.exists()
