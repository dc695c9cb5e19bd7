"""A server recording of an SFU room and of a P2P room in real Chromium, decoded back and
checked like a viewer.

Alice (the room's creator), Bob and Carol meet in a room; Alice presses the record
button; Bob leaves midway; Dave joins late; Alice stops the recording. The test then fetches
the finished file over the REST API with the admin token and decodes it with PyAV:

- format: 1280x720, a constant 30 fps, duration = the sidecar's end - start = the wall-clock
  time between the clicks (within 1%, and the sidecar's start and end inside the moments the
  test clicked and saw the REC indicator change);
- pictures: while a participant is present, their colour (y4m) fills their tile of the grid
  (3 tiles -> 2 tiles when Bob leaves -> 3 tiles when Dave joins), and the spaces between the
  tiles show the background;
- sound: each present participant's tone (WAV) is in the mix (FFT over windows), the absent
  ones' are not, and the mix never clips or wraps around.

Which windows to check comes from the sidecar's join and leave times, with margins, so a
loaded machine moves the phases but not the verdict.

The P2P room (#19) is recorded through each participant's publish-only uplink: while it runs,
the server forwards nothing to anyone (no consumers) and every connection that receives media
in a browser goes to another browser, never to one of the server's UDP ports; after the stop
the uplinks are gone, in the server and in the browsers.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from sfu.recording.compositor import Rect, compute_layout, fit, grid_shape
from tests.e2e.conftest import (
    ADMIN_TOKEN,
    OUTPUT_DIR,
    PERSONAS,
    LaunchFn,
    Participant,
    ServerProcess,
    colour_close,
    start_server,
    stop_server,
    wait_until,
)
from tests.e2e.conftest import HEIGHT as CAMERA_H
from tests.e2e.conftest import WIDTH as CAMERA_W
from tests.e2e.hosts import KEEP_PEER_CONNECTIONS

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]

# This module's server records at 640x360, 15 fps (the defaults are 1280x720 at 30): a
# quarter of the pixels and half the pictures leave the 2-core test machine enough CPU for
# four Chromiums and the SFU (at 720p30 the recorder's worker thread fell seconds behind and
# starved the event loop, so packets reached the recorder later than its 300 ms latency).
OUT_W, OUT_H, OUT_FPS = 640, 360, 15
# Latency 1.5 s instead of 0.3: each join stalls this server's event loop on the busy VM (the
# new peer connections' handshakes), and packets then reached the recorder up to 0.9 s late;
# audio later than the latency misses its place in the mix (measured). Nothing else in the
# recording depends on the latency.
RECORDING_ENV = {
    "SFU_RECORDING__WIDTH": str(OUT_W),
    "SFU_RECORDING__HEIGHT": str(OUT_H),
    "SFU_RECORDING__FPS": str(OUT_FPS),
    "SFU_RECORDING__LATENCY_MS": "1500",
}
BACKGROUND = (0x10, 0x14, 0x18)  # recording.background's default, #101418
RATE = 48_000
SCALE = 2  # frames are kept at half size (320x180): enough for tile-sized regions

PHASE_1_SECONDS = 5.0  # Alice, Bob and Carol
PHASE_2_SECONDS = 3.5  # after Bob left
PHASE_3_SECONDS = 3.5  # after Dave's picture reached Alice

# Margins inside each phase (seconds): the first pictures of a track wait for a keyframe.
FIRST_PICTURE = 2.0  # after the recording started
AFTER_EVENT = 0.6  # after a join or leave took effect
BEFORE_EVENT = 0.5
MIN_WINDOW = 1.5

COLOUR_TOL = 30  # per RGB channel: y4m -> VP8 -> composite (BT.601) -> H.264 -> RGB
# Tone levels: amplitude in blocks of BLOCK samples (each WAV is a sine of amplitude 0.5; the
# mix's limiter compresses three voices to about 0.45 each). Absent: the limiter's
# intermodulation of the others stays below 0.03 (2 x 550 - 440 = 660 is Bob's tone).
BLOCK = 2048
TONE_PRESENT = 0.15  # the median block
TONE_ABSENT = 0.06  # the median block
TONE_COVERAGE = 0.8  # share of blocks in which each present voice is heard
FULL_SCALE = 1.0
AAC_OVERSHOOT = 0.3  # single-sample codec ringing; an unlimited sum of 3 x 0.5 reaches 1.5


JS_WATCH_REC = """() => {
  window.__recTexts = [];
  const seen = () => {
    const el = document.querySelector('[data-testid=rec-indicator]');
    if (el) window.__recTexts.push(el.textContent);
  };
  const all = {subtree: true, childList: true, characterData: true};
  new MutationObserver(seen).observe(document.body, all);
}"""


@pytest.fixture(scope="module")
def e2e_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """This module's own server (``launch`` uses it too), recording at RECORDING_ENV."""
    server = start_server(tmp_path_factory.mktemp("recording-server"), RECORDING_ENV)
    yield server
    stop_server(server)


# -- the meeting ---------------------------------------------------------------------------
@dataclass
class Recorded:
    mode: str
    room_id: str
    meta: dict[str, Any]
    path: Path
    wall: dict[str, float]  # time.time() of the test's clicks and observations
    user_ids: dict[str, str]
    first_picture: float  # seconds into the recording from which everyone's picture is in


# Every connection of the page that receives media: its selected pair's remote port.
JS_RECEIVING_REMOTE_PORTS = """async () => {
  const out = [];
  for (const pc of window.__peerConnections.filter((c) => c.connectionState !== 'closed')) {
    const stats = await pc.getStats();
    let receives = false, pair = null;
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && (s.bytesReceived || 0) > 0) receives = true;
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        pair = stats.get(s.selectedCandidatePairId);
      }
    });
    const remote = pair ? stats.get(pair.remoteCandidateId) : null;
    if (receives) out.push(remote ? remote.port : null);
  }
  return out;
}"""
JS_OPEN_CONNECTIONS = (
    "() => window.__peerConnections.filter((c) => c.connectionState !== 'closed').length"
)


def server_udp_ports(server: ServerProcess) -> set[int]:
    out = subprocess.run(["ss", "-uanpH"], capture_output=True, text=True, check=True).stdout
    lines = [line for line in out.splitlines() if f"pid={server.proc.pid}," in line]
    return {int(line.split()[3].rpartition(":")[2]) for line in lines}


def room_view(server: ServerProcess, room_id: str) -> dict[str, Any]:
    return server.admin("GET", f"/api/rooms/{room_id}")


def uplinks_flowing(server: ServerProcess, room_id: str, tracks: int) -> bool:
    media = room_view(server, room_id).get("media")
    producers = media["producers"] if media else []
    return len(producers) == tracks and all(p["frames"] > 10 for p in producers)


def p2p_paths_direct(people: dict[str, Participant], server: ServerProcess) -> None:
    """Everyone receives over browser-to-browser connections only: the uplink carries nothing
    back, and the server forwards nothing."""
    ports = server_udp_ports(server)
    for name, p in people.items():
        remote = p.eval(JS_RECEIVING_REMOTE_PORTS)
        assert len(remote) == len(people) - 1, (name, remote)
        assert all(port is not None and port not in ports for port in remote), (name, remote)


def fetch_file(server: ServerProcess, recording_id: str, target: Path) -> Path:
    req = urllib.request.Request(f"{server.url}/api/recordings/{recording_id}/file")
    req.add_header("Authorization", f"Bearer {ADMIN_TOKEN}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        target.write_bytes(resp.read())
    return target


def sees(viewer: Participant, name: str) -> bool:
    return colour_close(viewer.video_colour(name), PERSONAS[name].rgb)


@pytest.fixture(scope="module", params=["sfu", "p2p"])
def recorded(
    request: pytest.FixtureRequest,
    e2e_server: ServerProcess,
    launch: LaunchFn,
    tmp_path_factory: pytest.TempPathFactory,
) -> Recorded:
    mode = request.param
    room_id = e2e_server.create_room(mode)
    people: dict[str, Participant] = {}

    def join(name: str) -> Participant:
        return launch(name, room=room_id, init_scripts=(KEEP_PEER_CONNECTIONS,))

    for name in ("Alice", "Bob", "Carol"):  # Alice joins first: she is the room's creator
        people[name] = join(name)
        people[name].wait_joined()
    user_ids = {name: p.user_id() for name, p in people.items()}
    alice = people["Alice"]
    if mode == "sfu":
        wait_until(
            lambda: (lambda m: len(m["producers"]) == 6 and m["consumers"] == 12)(
                e2e_server.room_media(room_id)
            ),
            what="3 publishers (audio + video) forwarded to the 2 others",
        )
    for name in ("Bob", "Carol"):
        wait_until(lambda n=name: sees(alice, n), what=f"Alice to see {name}")
    if mode == "p2p":
        assert "media" not in room_view(e2e_server, room_id)  # nothing at the server yet

    wall: dict[str, float] = {}
    record = alice.page.get_by_test_id("server-record-button")
    wall["start_click"] = time.time()
    record.click()
    alice.page.get_by_test_id("rec-indicator").wait_for()
    wall["started"] = time.time()
    for name in ("Bob", "Carol"):
        people[name].page.get_by_test_id("rec-indicator").wait_for()
    if mode == "p2p":
        wait_until(
            lambda: uplinks_flowing(e2e_server, room_id, 6),
            what="everyone's camera and microphone at the server through the uplinks",
        )
        wall["uplinks"] = time.time()
        media = room_view(e2e_server, room_id)["media"]
        assert media["consumers"] == 0 and media["connections"] == 3, media
        p2p_paths_direct(people, e2e_server)

    time.sleep(PHASE_1_SECONDS)
    bob = people.pop("Bob")
    wall["bob_leave_click"] = time.time()
    bob.page.get_by_test_id("leave-button").click()
    alice.tile("Bob").wait_for(state="detached")
    wall["bob_gone"] = time.time()

    time.sleep(PHASE_2_SECONDS)
    wall["dave_launch"] = time.time()
    dave = join("Dave")
    # A joiner of a recorded room is asked first (#13): Dave joins with camera and microphone.
    dave.page.get_by_test_id("consent-join-media").click()
    dave.wait_joined()
    user_ids["Dave"] = dave.user_id()
    wall["dave_joined"] = time.time()
    wait_until(lambda: sees(alice, "Dave"), what="Alice to see Dave")
    wall["dave_seen"] = time.time()
    people["Dave"] = dave
    if mode == "p2p":
        wait_until(lambda: uplinks_flowing(e2e_server, room_id, 6), what="Dave's uplink")
        wall["dave_uplink"] = time.time()
        p2p_paths_direct(people, e2e_server)

    time.sleep(PHASE_3_SECONDS)
    wall["stop_click"] = time.time()
    alice.eval(JS_WATCH_REC)  # every text the REC badge shows from now on
    record.click()
    alice.page.get_by_test_id("rec-indicator").wait_for(state="detached")
    wall["stopped"] = time.time()
    # "Saving…" at once on Stop, while the server finishes the file (#18).
    assert "Saving…" in alice.eval("() => window.__recTexts"), alice.eval("() => window.__recTexts")
    if mode == "p2p":
        # The uplinks close: the server's router and each browser's extra connection.
        wait_until(lambda: "media" not in room_view(e2e_server, room_id), what="the uplinks closed")
        for name, p in people.items():
            wait_until(
                lambda p=p: p.eval(JS_OPEN_CONNECTIONS) == len(people) - 1,
                what=f"{name}'s uplink connection closed",
            )
        assert sees(alice, "Carol") and sees(alice, "Dave")  # the call goes on

    def finished() -> list[dict[str, Any]]:
        recs = e2e_server.admin("GET", "/api/recordings")["recordings"]
        return [r for r in recs if r["room"] == room_id and r["state"] != "recording"]

    recs = wait_until(finished, what="the finished recording listed for the admin")
    assert len(recs) == 1, recs
    meta = e2e_server.admin("GET", f"/api/recordings/{recs[0]['id']}")
    target = tmp_path_factory.mktemp("recording") / meta["file"]
    fetch_file(e2e_server, meta["id"], target)
    OUTPUT_DIR.mkdir(exist_ok=True)
    (OUTPUT_DIR / f"recording-room-{mode}.mp4").write_bytes(target.read_bytes())
    (OUTPUT_DIR / f"recording-room-{mode}.json").write_text(
        json.dumps({"meta": meta, "wall": wall})
    )
    # A P2P room's pictures come once the uplinks (opened by the recording) carry them.
    first = FIRST_PICTURE
    if mode == "p2p":
        first = max(first, wall["uplinks"] - iso_seconds(meta["start"]) + AFTER_EVENT)
    # The next mode's meeting must not share the 2 cores with this one's four browsers.
    for p in (*people.values(), bob):
        p.close()
    return Recorded(mode, room_id, meta, target, wall, user_ids, first)


# -- decoding --------------------------------------------------------------------------------
@dataclass
class Decoded:
    width: int
    height: int
    rate: float  # the stream's declared frame rate
    times: np.ndarray  # every video frame's time, seconds
    frames: np.ndarray  # (n, h / SCALE, w / SCALE, 3) RGB
    audio: np.ndarray  # mono float32 at RATE, from audio_start
    audio_start: float
    audio_codec: str
    video_codec: str

    def frame_at(self, t: float) -> np.ndarray:
        return self.frames[int(np.argmin(np.abs(self.times - t)))]

    def audio_between(self, start: float, end: float) -> np.ndarray:
        a = max(0, round((start - self.audio_start) * RATE))
        b = max(a, round((end - self.audio_start) * RATE))
        return self.audio[a:b]


@pytest.fixture(scope="module")
def decoded(recorded: Recorded) -> Decoded:
    times: list[float] = []
    frames: list[np.ndarray] = []
    with av.open(str(recorded.path)) as c:
        vs = c.streams.video[0]
        width, height = vs.codec_context.width, vs.codec_context.height
        rate = float(vs.average_rate or vs.guessed_rate or 0)
        vcodec = vs.codec_context.name
        for frame in c.decode(video=0):
            times.append(float(frame.time))
            frames.append(
                frame.to_ndarray(format="rgb24", width=width // SCALE, height=height // SCALE)
            )
    chunks: list[np.ndarray] = []
    start: float | None = None
    with av.open(str(recorded.path)) as c:
        acodec = c.streams.audio[0].codec_context.name
        for frame in c.decode(audio=0):
            if start is None:
                start = float(frame.time)
            pcm = frame.to_ndarray()
            chunks.append(
                pcm[0] if frame.format.is_planar else pcm.reshape(-1)[:: frame.layout.nb_channels]
            )
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return Decoded(
        width,
        height,
        rate,
        np.array(times),
        np.stack(frames),
        audio,
        start or 0.0,
        acodec,
        vcodec,
    )


# -- phases from the sidecar ------------------------------------------------------------------
@dataclass
class Phase:
    name: str
    people: list[str]  # persona names in tile order
    start: float  # the window to check, seconds of the recording
    end: float


def sessions(meta: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {p["name"]: p["sessions"] for p in meta["participants"]}


def tile_rects(people: list[str], user_ids: dict[str, str]) -> dict[str, Rect]:
    keys = [(user_ids[n], "camera") for n in people]
    layout = compute_layout(keys, OUT_W, OUT_H, "grid")
    return {n: layout[(user_ids[n], "camera")] for n in people}


def picture_rect(tile: Rect) -> Rect:
    """Where the 4:3 camera picture sits in its 16:9 tile (pillarboxed)."""
    return fit(CAMERA_W, CAMERA_H, tile)


def shrink(r: Rect, fraction: float) -> tuple[float, float, float, float]:
    dx, dy = r.w * fraction, r.h * fraction
    return r.x + dx, r.y + dy, r.x + r.w - dx, r.y + r.h - dy


def inside(point: tuple[float, float], box: tuple[float, float, float, float]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def region_colour(frame: np.ndarray, point: tuple[float, float], half: int = 3) -> np.ndarray:
    x, y = int(point[0] / SCALE), int(point[1] / SCALE)
    return frame[y - half : y + half + 1, x - half : x + half + 1].reshape(-1, 3).mean(0)


def close(got: np.ndarray, want: tuple[int, int, int], tol: float = COLOUR_TOL) -> bool:
    return bool(np.abs(got - np.array(want, dtype=float)).max() <= tol)


def first_time_showing(dec: Decoded, name: str, rect: Rect, after: float) -> float | None:
    centre = rect.centre
    for t, frame in zip(dec.times, dec.frames, strict=True):
        if t >= after and close(region_colour(frame, centre), PERSONAS[name].rgb):
            return float(t)
    return None


@pytest.fixture(scope="module")
def phases(recorded: Recorded, decoded: Decoded) -> list[Phase]:
    meta, ids = recorded.meta, recorded.user_ids
    s = sessions(meta)
    bob_left = s["Bob"][0]["left_offset"]
    dave_joined = s["Dave"][0]["joined_offset"]
    end = meta["duration"]
    # Dave's tile (a placeholder at first) shows his camera once his first keyframe is in.
    dave_rect = tile_rects(["Alice", "Carol", "Dave"], ids)["Dave"]
    dave_shown = first_time_showing(decoded, "Dave", dave_rect, dave_joined)
    assert dave_shown is not None, "Dave's colour never appears in his tile"
    # No later than Alice saw him (P2P: than his uplink reached the server), plus the slack
    # of a loaded machine.
    seen = recorded.wall.get("dave_uplink", recorded.wall["dave_seen"])
    seen -= iso_seconds(meta["start"])
    assert dave_shown <= seen + 1.0, (dave_shown, seen)
    out = [
        Phase("three", ["Alice", "Bob", "Carol"], recorded.first_picture, bob_left - BEFORE_EVENT),
        Phase("two", ["Alice", "Carol"], bob_left + AFTER_EVENT, dave_joined - BEFORE_EVENT),
        Phase(
            "three again", ["Alice", "Carol", "Dave"], dave_shown + AFTER_EVENT, end - BEFORE_EVENT
        ),
    ]
    for p in out:
        assert p.end - p.start >= MIN_WINDOW, (p, s, end)
    return out


def iso_seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


# -- the checks --------------------------------------------------------------------------------
def test_sidecar_tells_who_was_there_and_when(netns: None, recorded: Recorded) -> None:
    meta, ids = recorded.meta, recorded.user_ids
    assert meta["state"] == "stopped" and meta["error"] is None, meta
    assert meta["stop_reason"] == f"stopped by {ids['Alice']}"
    assert meta["room"] == recorded.room_id and meta["layout"] == "grid"
    assert (meta["width"], meta["height"], meta["fps"]) == (OUT_W, OUT_H, OUT_FPS)
    assert meta["size"] == recorded.path.stat().st_size > 0
    s = sessions(meta)
    assert sorted(s) == ["Alice", "Bob", "Carol", "Dave"]
    by_id = {p["user_id"]: p["name"] for p in meta["participants"]}
    assert by_id == {uid: name for name, uid in ids.items()}
    for name in ("Alice", "Carol"):  # there from start to end
        assert [(x["joined_offset"], x["left_offset"]) for x in s[name]] == [(0.0, None)]
    assert len(s["Bob"]) == 1 and s["Bob"][0]["joined_offset"] == 0.0
    assert len(s["Dave"]) == 1 and s["Dave"][0]["left_offset"] is None
    bob_left, dave_joined = s["Bob"][0]["left_offset"], s["Dave"][0]["joined_offset"]
    assert 0 < bob_left < dave_joined < meta["duration"]
    # The sidecar's times are the moments of the clicks (wall clock of this machine).
    start, w = iso_seconds(meta["start"]), recorded.wall
    assert w["bob_leave_click"] - 0.05 <= start + bob_left <= w["bob_gone"] + 0.05
    assert w["dave_launch"] - 0.05 <= start + dave_joined <= w["dave_joined"] + 0.05


def test_format_constant_frame_rate_and_duration(
    netns: None, recorded: Recorded, decoded: Decoded
) -> None:
    meta, w = recorded.meta, recorded.wall
    assert (decoded.width, decoded.height) == (OUT_W, OUT_H)
    assert (decoded.video_codec, decoded.audio_codec) == ("h264", "aac")
    assert decoded.rate == pytest.approx(OUT_FPS)
    times = decoded.times
    assert times[0] == pytest.approx(0.0, abs=1e-3)
    assert np.allclose(np.diff(times), 1 / OUT_FPS, atol=1e-3), "not a constant frame rate"
    # Duration: the file, its sidecar and the wall clock agree.
    duration = meta["duration"]
    start, end = iso_seconds(meta["start"]), iso_seconds(meta["end"])
    assert end - start == pytest.approx(duration, abs=0.002)
    video_seconds = len(times) / OUT_FPS
    audio_seconds = decoded.audio_start + len(decoded.audio) / RATE
    assert video_seconds == pytest.approx(duration, rel=0.01)
    assert audio_seconds == pytest.approx(duration, rel=0.01)
    # The recording started between the click and the REC indicator, and ended likewise.
    assert w["start_click"] - 0.05 <= start <= w["started"] + 0.05, (start, w)
    assert w["stop_click"] - 0.05 <= end <= w["stopped"] + 0.05, (end, w)
    clicks = w["stop_click"] - w["start_click"]
    slack = (w["started"] - w["start_click"]) + (w["stopped"] - w["stop_click"])
    assert abs(duration - clicks) <= max(0.01 * clicks, slack), (duration, clicks, slack)


def expected_colour(
    point: tuple[float, float], rects: dict[str, Rect]
) -> tuple[int, int, int] | None:
    """What a viewer sees at ``point``: someone's colour, the background, or (None) an edge."""
    for name, rect in rects.items():
        if inside(point, shrink(picture_rect(rect), 0.2)):
            return PERSONAS[name].rgb
    margin = OUT_W // 50
    for rect in rects.values():
        if inside(
            point,
            (rect.x - margin, rect.y - margin, rect.x + rect.w + margin, rect.y + rect.h + margin),
        ):
            return None  # a tile's black bars, its label or its border
    return BACKGROUND


def test_layout_follows_leave_and_late_join(netns: None, recorded: Recorded) -> None:
    ids = recorded.user_ids
    three = tile_rects(["Alice", "Bob", "Carol"], ids)
    two = tile_rects(["Alice", "Carol"], ids)
    again = tile_rects(["Alice", "Carol", "Dave"], ids)
    # The documented grid: 2x2 with the third tile centred below, then 2x1 side by side.
    assert grid_shape(3) == (2, 2) and grid_shape(2) == (2, 1)
    assert three["Alice"].y == three["Bob"].y < three["Carol"].y
    assert abs(three["Carol"].centre[0] - OUT_W / 2) <= 2
    assert two["Alice"].y == two["Carol"].y and abs(two["Alice"].centre[1] - OUT_H / 2) <= 2
    # Carol takes Bob's place when Dave joins after her, and Dave takes hers.
    assert again["Carol"] == three["Bob"] and again["Dave"] == three["Carol"]


def test_tiles_show_each_present_participant(
    netns: None, recorded: Recorded, decoded: Decoded, phases: list[Phase]
) -> None:
    ids = recorded.user_ids
    layouts = [tile_rects(p.people, ids) for p in phases]
    # Probe every tile's centre of every layout (and the space between tiles), in every phase.
    probes = sorted({r.centre for rects in layouts for r in rects.values()})
    # Beside the lone bottom tile of 3, above and below the row of 2: background or a tile.
    probes += [(OUT_W * 0.08, OUT_H * 0.85), (OUT_W * 0.92, OUT_H * 0.85), (OUT_W / 2, OUT_H * 0.1)]
    failures: list[str] = []
    checked = 0
    for phase, rects in zip(phases, layouts, strict=True):
        wanted = [(pt, expected_colour(pt, rects)) for pt in probes]
        for name in phase.people:  # everyone's picture, and the background, are probed
            assert any(c == PERSONAS[name].rgb for _, c in wanted), (phase, name)
        assert any(c == BACKGROUND for _, c in wanted), phase
        window = (decoded.times >= phase.start) & (decoded.times <= phase.end)
        for i in np.flatnonzero(window)[::3]:  # 10 pictures a second
            for pt, want in wanted:
                if want is None:
                    continue
                got = region_colour(decoded.frames[i], pt)
                checked += 1
                if not close(got, want):
                    failures.append(
                        f"{phase.name} t={decoded.times[i]:.2f} at {pt}: "
                        f"{got.round().tolist()} != {want}"
                    )
    assert checked > 100
    assert not failures, f"{len(failures)} of {checked} wrong, e.g.: " + "; ".join(failures[:8])


def tone_levels(samples: np.ndarray, freq: float) -> np.ndarray:
    """Amplitude of a sine at ``freq`` in each block of BLOCK samples (Hann window).

    Per block, so a phase jump (Chromium's fake microphone loops its 2 s file with one) does
    not cancel the tone the way one long coherent window would.
    """
    n = len(samples) // BLOCK
    blocks = samples[: n * BLOCK].reshape(n, BLOCK)
    w = np.hanning(BLOCK)
    basis = np.exp(-2j * np.pi * freq * np.arange(BLOCK) / RATE) * w
    return 2 * np.abs(blocks @ basis) / w.sum()


def test_mix_holds_the_present_voices_and_never_clips(
    netns: None, decoded: Decoded, phases: list[Phase]
) -> None:
    audio = decoded.audio
    # The mix's limiter keeps three voices of 0.5 (1.5 summed) under 0.89 (tests/recording
    # check the mixer's own output never passes it). AAC rings past that at a sharp edge
    # (Chromium's fake microphone clicks where it loops its file; measured peaks up to 1.15
    # in single samples): so a handful of samples may pass full scale, never a clipped run
    # like the ~20% of an unlimited sum.
    peak = float(np.abs(audio).max())
    assert 0.2 < peak < FULL_SCALE + AAC_OVERSHOOT, peak
    assert np.mean(np.abs(audio) >= FULL_SCALE) < 1e-3, peak
    # Wrap-around (an int16 overflow) jumps by nearly 2 between two samples; a click in a
    # source (see above) by up to about 1.
    jump = float(np.abs(np.diff(audio)).max())
    assert jump < 1.5, jump
    report: dict[str, dict[str, tuple[float, float]]] = {}
    for phase in phases:
        seg = decoded.audio_between(phase.start, phase.end)
        assert len(seg) >= MIN_WINDOW * RATE * 0.99, phase
        levels = {n: tone_levels(seg, p.tone_hz) for n, p in PERSONAS.items()}
        report[phase.name] = {
            n: (round(float(np.median(v)), 3), round(float(np.mean(v >= TONE_PRESENT)), 2))
            for n, v in levels.items()
        }
    for phase in phases:
        for name, (median, coverage) in report[phase.name].items():
            if name in phase.people:
                assert median >= TONE_PRESENT and coverage >= TONE_COVERAGE, (
                    f"{name}'s tone missing in phase {phase.name}: {report}"
                )
            else:
                assert median <= TONE_ABSENT, f"{name}'s tone in phase {phase.name}: {report}"


def test_p2p_recording_started_by_the_administrator(
    netns: None, e2e_server: ServerProcess, launch: LaunchFn, tmp_path: Path
) -> None:
    """``POST /api/rooms/{id}/recording`` in a P2P room: the apps open their uplinks, the
    file holds both people; ``DELETE`` ends it and the uplinks close."""
    room_id = e2e_server.create_room("p2p")
    people = {
        name: launch(name, room=room_id, init_scripts=(KEEP_PEER_CONNECTIONS,))
        for name in ("Alice", "Bob")
    }
    for p in people.values():
        p.wait_joined()
    wait_until(lambda: sees(people["Alice"], "Bob"), what="Alice to see Bob")
    started = e2e_server.admin("POST", f"/api/rooms/{room_id}/recording", {"layout": "grid"})
    for p in people.values():
        p.page.get_by_test_id("rec-indicator").wait_for()
    wait_until(lambda: uplinks_flowing(e2e_server, room_id, 4), what="both uplinks")
    p2p_paths_direct(people, e2e_server)
    time.sleep(3)
    meta = e2e_server.admin("DELETE", f"/api/rooms/{room_id}/recording")
    assert meta["recordingId"] == started["recordingId"]
    assert meta["stop_reason"] == "stopped by the administrator"
    for name, p in people.items():
        p.page.get_by_test_id("rec-indicator").wait_for(state="detached")
        wait_until(lambda p=p: p.eval(JS_OPEN_CONNECTIONS) == 1, what=f"{name}'s uplink closed")
    assert "media" not in room_view(e2e_server, room_id)

    path = fetch_file(e2e_server, meta["recordingId"], tmp_path / "p2p.mp4")
    with av.open(str(path)) as c:
        last = None
        for frame in c.decode(video=0):
            last = frame.to_ndarray(format="rgb24")
    assert last is not None
    ids = {name: p.user_id() for name, p in people.items()}
    layout = compute_layout([(ids[n], "camera") for n in people], OUT_W, OUT_H, "grid")
    for name in people:
        x, y = layout[(ids[name], "camera")].centre
        got = last[int(y) - 3 : int(y) + 4, int(x) - 3 : int(x) + 4].reshape(-1, 3).mean(0)
        assert close(got, PERSONAS[name].rgb), (name, got)
    chunks = []
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            pcm = frame.to_ndarray()
            step = frame.layout.nb_channels
            chunks.append(pcm[0] if frame.format.is_planar else pcm.reshape(-1)[::step])
    audio = np.concatenate(chunks).astype(np.float32)
    audio = audio[-int(1.8 * RATE) : -int(0.3 * RATE)]  # before the end
    for name in people:
        level = float(np.median(tone_levels(audio, PERSONAS[name].tone_hz)))
        assert level >= TONE_PRESENT, (name, level)
