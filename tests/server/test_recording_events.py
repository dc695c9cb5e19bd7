"""Server recordings of SFU and P2P rooms: started and stopped by Socket.IO, REST and the room
itself, announced to the room, downloadable with the room's token, and the file holding what
was sent.

Everything runs against a real server; the media test uses real aiortc publishers (inside
scripts/netns-run) and decodes the recording back with PyAV.
"""

from __future__ import annotations

import asyncio
import fractions
import io
import json
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack
from av import AudioFrame, VideoFrame

from tests.conftest import Client, RunningServer
from tests.support.peers import SfuPeer, SocketRouter
from tests.test_cli import sfu

TOKEN = "recording-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
MakeServer = Callable[..., Awaitable[RunningServer]]


def recording_settings(directory: Path, **extra: Any) -> dict[str, Any]:
    """Small and cheap: 320x240 at 15 fps, the fastest x264 preset, one encoder thread."""
    return {
        "directory": str(directory),
        "width": 320,
        "height": 240,
        "fps": 15,
        "preset": "ultrafast",
        "encoder_threads": 1,
        "min_free_mb": 0,
        **extra,
    }


async def start_server(make_server: MakeServer, directory: Path, **extra: Any) -> RunningServer:
    return await make_server(
        recording=recording_settings(directory, **extra), auth={"admin_token": TOKEN}
    )


async def until(condition: Callable[[], Any], timeout: float = 15, what: str = "") -> Any:
    """Polls ``condition`` until it is truthy; returns its value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := condition()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.05)
    return value


async def connect(server: RunningServer, made: list[Client]) -> Client:
    client = await Client(server.url).connect()
    made.append(client)
    return client


@pytest.fixture
async def made() -> Any:
    clients: list[Client] = []
    yield clients
    for client in clients:
        await client.close()


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def decode(path: Path | bytes) -> tuple[list[tuple[float, np.ndarray]], np.ndarray, float]:
    """(time, rgb picture) of every video frame, the mono audio at 48 kHz, the duration."""
    source = io.BytesIO(path) if isinstance(path, bytes) else str(path)
    pictures: list[tuple[float, np.ndarray]] = []
    chunks: list[np.ndarray] = []
    with av.open(source) as container:
        for frame in container.decode(video=0):
            pictures.append((float(frame.time), frame.to_ndarray(format="rgb24")))
    with av.open(io.BytesIO(path) if isinstance(path, bytes) else str(path)) as container:
        if container.streams.audio:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=48000)
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    duration = pictures[-1][0] + 1 / 15 if pictures else 0.0
    return pictures, audio, duration


# -- Socket.IO: start, stop, permissions, state ---------------------------------------------


async def test_socket_start_stop_permission_and_state(
    make_server: MakeServer, tmp_path: Path, made: list[Client]
) -> None:
    server = await start_server(make_server, tmp_path)
    alice, bob = await connect(server, made), await connect(server, made)
    ack = await alice.join("team", "alice", "Alice", mode="sfu", roomName="Team sync")
    assert ack["recording"] == {"recording": False}
    assert isinstance(ack["recordingToken"], str) and len(ack["recordingToken"]) >= 20
    bob_ack = await bob.join("team", "bob", "Bob")
    assert bob_ack["recordingToken"] == ack["recordingToken"]  # one token per room

    # Only the creator may record (recording.who_can_record = "creator").
    refused = await bob.call("recording-start", {})
    assert refused == {"ok": False, "error": "forbidden", "message": refused["message"]}
    for bad in ({"layout": "diagonal"}, "grid", [1]):
        refused = await alice.call("recording-start", bad)
        assert refused["ok"] is False and refused["error"] == "invalid_payload", bad
    assert (await alice.call("recording-stop", {}))["error"] == "not_recording"
    assert server.server.recordings.active == {}
    assert files(tmp_path) == []  # nothing refused left a file

    started = await alice.call("recording-start", {"layout": "speaker"})
    assert started["ok"] is True, started
    recording_id = started["recordingId"]
    for client in (alice, bob):
        [state] = await client.wait_for("recording-state")
        assert state["recording"] is True and state["recordingId"] == recording_id
        assert state["startedBy"] == "alice" and state["layout"] == "speaker"
        assert state["startedByName"] == "Alice"
        assert isinstance(state["startedAt"], int)
    assert (await alice.call("recording-start", {}))["error"] == "already_recording"

    # A late joiner sees the REC indicator in its join answer.
    carol = await connect(server, made)
    late = await carol.join("team", "carol", "Carol")
    assert late["recording"]["recording"] is True
    assert late["recording"]["recordingId"] == recording_id
    assert late["recording"]["startedBy"] == "alice"

    await asyncio.sleep(1)
    assert (await bob.call("recording-stop", {}))["error"] == "forbidden"
    stopped = await alice.call("recording-stop", {})
    assert stopped == {"ok": True, "recordingId": recording_id}
    for client in (alice, bob, carol):
        states = await client.wait_for("recording-state", count=2 if client is not carol else 1)
        assert states[-1] == {
            "recording": False,
            "recordingId": recording_id,
            "reason": "stopped by alice",
        }
    meta = server.server.recordings.store.get(recording_id)
    assert meta is not None and meta["state"] == "stopped" and meta["layout"] == "speaker"
    assert [p["name"] for p in meta["participants"]] == ["Alice", "Bob", "Carol"]
    # By name, for the recordings page (#18): the meeting, who started and stopped it, who
    # took part; ready, with its thumbnail (placeholders: nobody published).
    assert meta["roomName"] == "Team sync" and meta["participantNames"] == ["Alice", "Bob", "Carol"]
    assert (meta["startedBy"], meta["startedByName"]) == ("alice", "Alice")
    assert (meta["stoppedBy"], meta["stoppedByName"]) == ("alice", "Alice")
    assert meta["status"] == "ready" and meta["thumbnail"] == f"{recording_id}.thumb.jpg"
    pictures, _, duration = decode(tmp_path / meta["file"])
    assert pictures[0][1].shape == (240, 320, 3)
    assert abs(duration - meta["duration"]) < 0.2

    # who_can_record = "anyone", changed at run time by the administrator.
    async with aiohttp.ClientSession() as http:
        changed = await http.patch(
            f"{server.url}/api/settings",
            json={"changes": {"recording.who_can_record": "anyone"}},
            headers=ADMIN,
        )
        assert changed.status == 200, await changed.text()
    assert (await bob.call("recording-start"))["ok"] is True
    assert (await carol.call("recording-stop"))["ok"] is True

    # A P2P room has its recording token too (it can be recorded: #19, below).
    dave = await connect(server, made)
    p2p = await dave.join("chat", "dave", "Dave", mode="p2p")
    assert isinstance(p2p["recordingToken"], str) and p2p["recording"] == {"recording": False}
    # Not in a room at all.
    eve = await connect(server, made)
    assert (await eve.call("recording-start", {}))["error"] == "not_in_room"


# -- REST: start, stop, downloads with the room token ---------------------------------------


async def test_rest_start_stop_and_room_token_downloads(
    make_server: MakeServer, tmp_path: Path, made: list[Client]
) -> None:
    server = await start_server(make_server, tmp_path)
    alice, zoe, paul = [await connect(server, made) for _ in range(3)]
    token = (await alice.join("r1", "alice", "Alice", mode="sfu"))["recordingToken"]
    other_token = (await zoe.join("r2", "zoe", "Zoe", mode="sfu"))["recordingToken"]
    await paul.join("p2p", "paul", "Paul", mode="p2p")
    base = f"{server.url}/api/rooms"
    async with aiohttp.ClientSession() as http:
        # Without the admin token nothing starts, whatever the room token.
        for headers in ({}, {"Authorization": f"Bearer {token}"}):
            answer = await http.post(f"{base}/r1/recording", json={}, headers=headers)
            assert answer.status == 401
        answer = await http.post(f"{base}/nowhere/recording", headers=ADMIN)
        assert answer.status == 404 and (await answer.json())["error"] == "unknown_room"
        for body in ({"layout": "mosaic"}, [1]):
            answer = await http.post(f"{base}/r1/recording", json=body, headers=ADMIN)
            assert answer.status == 400 and (await answer.json())["error"] == "invalid_payload"
        nope = {**ADMIN, "Content-Type": "application/json"}
        answer = await http.post(f"{base}/r1/recording", data=b"{nope", headers=nope)
        assert answer.status == 400
        assert server.server.recordings.active == {} and files(tmp_path) == []

        answer = await http.post(f"{base}/r1/recording", headers=ADMIN)
        assert answer.status == 201, await answer.text()
        started = await answer.json()
        recording_id = started["recordingId"]
        assert started["roomId"] == "r1" and started["recording"] is True
        [state] = await alice.wait_for("recording-state")
        assert state["recordingId"] == recording_id and state["startedBy"] is None
        answer = await http.post(f"{base}/r1/recording", json={}, headers=ADMIN)
        assert answer.status == 409 and (await answer.json())["error"] == "already_recording"

        await asyncio.sleep(1.5)
        assert (await http.delete(f"{base}/r1/recording")).status == 401
        answer = await http.delete(f"{base}/r1/recording", headers=ADMIN)
        assert answer.status == 200
        stopped = await answer.json()
        assert stopped["recordingId"] == recording_id and stopped["state"] == "stopped"
        assert stopped["duration"] > 1.0
        # The administrator stopped it: no participant's name.
        assert stopped["startedByName"] is None and stopped["stoppedByName"] is None
        assert stopped["thumbnail"] == f"{recording_id}.thumb.jpg"
        answer = await http.delete(f"{base}/r1/recording", headers=ADMIN)
        assert answer.status == 409 and (await answer.json())["error"] == "not_recording"
        assert (await http.delete(f"{base}/nowhere/recording", headers=ADMIN)).status == 404
        states = await alice.wait_for("recording-state", count=2)
        assert states[-1]["recording"] is False

        # The room's participants download with their token (header or query); another
        # room's token finds nothing (404, as for an unknown id); a wrong one or none: 401.
        url = f"{server.url}/api/recordings/{recording_id}/file"
        answer = await http.get(url, params={"token": token})
        assert answer.status == 200
        data = await answer.read()
        _, _, duration = decode(data)
        assert abs(duration - stopped["duration"]) < 0.2
        answer = await http.get(url, headers={"Authorization": f"Bearer {token}"})
        assert answer.status == 200 and await answer.read() == data
        assert (await http.get(url, params={"token": other_token})).status == 404
        wrong = token[:-1] + ("y" if token.endswith("x") else "x")
        assert (await http.get(url, params={"token": wrong})).status == 401
        assert (await http.get(url)).status == 401
        # The thumbnail: as the file, with the room's token (an <img> sends it in the query).
        thumb = f"{server.url}/api/recordings/{recording_id}/thumbnail"
        answer = await http.get(thumb, params={"token": token})
        assert answer.status == 200 and answer.content_type == "image/jpeg"
        assert (await answer.read())[:3] == b"\xff\xd8\xff"
        assert (await http.get(thumb, params={"token": other_token})).status == 404
        assert (await http.get(thumb)).status == 401
        listed = await (await http.get(f"{server.url}/api/recordings?token={token}")).json()
        assert [m["id"] for m in listed["recordings"]] == [recording_id]
        assert listed["recordings"][0]["status"] == "ready"
        listed = await (await http.get(f"{server.url}/api/recordings?token={other_token}")).json()
        assert listed["recordings"] == []
        # Participants may not delete; the administrator may.
        item = f"{server.url}/api/recordings/{recording_id}"
        assert (await http.delete(item, params={"token": token})).status == 403
        assert (await http.get(url, headers=ADMIN)).status == 200
        assert (await http.delete(item, headers=ADMIN)).status == 204
        assert (await http.get(url, headers=ADMIN)).status == 404
        assert files(tmp_path) == []
        # Prune is the administrator's.
        assert (await http.post(f"{server.url}/api/recordings/prune")).status == 401
        answer = await http.post(f"{server.url}/api/recordings/prune", headers=ADMIN)
        assert answer.status == 200 and await answer.json() == {"deleted": []}


# -- the room ends the recording ------------------------------------------------------------


async def test_room_left_empty_finalizes_the_file(
    make_server: MakeServer, tmp_path: Path, made: list[Client]
) -> None:
    server = await start_server(make_server, tmp_path)
    alice = await connect(server, made)
    await alice.join("solo", "alice", "Alice", mode="sfu")
    recording_id = (await alice.call("recording-start", {}))["recordingId"]
    await asyncio.sleep(1.5)
    assert (await alice.call("leave-room", {}))["ok"] is True
    store = server.server.recordings.store
    meta = await until(
        lambda: (m := store.get(recording_id)) and m["state"] == "stopped" and m,
        what="the recording to finish",
    )
    assert meta["stop_reason"] == "room closed"
    assert meta["duration"] >= 1.4
    pictures, _, duration = decode(tmp_path / meta["file"])
    assert abs(duration - meta["duration"]) < 0.2
    assert len(pictures) >= 20


async def test_server_shutdown_finalizes_the_file(make_server: MakeServer, tmp_path: Path) -> None:
    server = await start_server(make_server, tmp_path)
    alice = await Client(server.url).connect()
    await alice.join("late-night", "alice", "Alice", mode="sfu")
    recording_id = (await alice.call("recording-start", {}))["recordingId"]
    await asyncio.sleep(1)
    await server.runner.cleanup()  # what aiohttp runs on SIGTERM
    meta = server.server.recordings.store.get(recording_id)
    assert meta is not None and meta["state"] == "stopped"
    assert meta["stop_reason"] == "server shutdown"
    states = alice.received("recording-state")
    assert states[-1]["recording"] is False and states[-1]["reason"] == "server shutdown"
    assert alice.received("server-shutdown")
    _, _, duration = decode(tmp_path / meta["file"])
    assert duration >= 0.9
    await alice.close()


async def test_failures_are_told_to_the_room(
    make_server: MakeServer, tmp_path: Path, made: list[Client]
) -> None:
    # Free space below recording.min_free_mb ends the recording as a full disk would.
    server = await start_server(make_server, tmp_path / "recordings", min_free_mb=10**9)
    alice = await connect(server, made)
    await alice.join("doomed", "alice", "Alice", mode="sfu")
    started = await alice.call("recording-start", {})
    assert started["ok"], started
    states = await alice.wait_for("recording-state", count=2)
    assert states[-1] == {
        "recording": False,
        "recordingId": started["recordingId"],
        "reason": "disk full",
        "error": True,
    }
    meta = server.server.recordings.store.get(started["recordingId"])
    assert meta is not None and meta["state"] == "error" and meta["error"] == "disk full"
    assert server.server.recordings.active == {}
    assert (await alice.call("recording-stop", {}))["error"] == "not_recording"

    # A directory that cannot be made: the start is refused and nothing changes.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    server = await start_server(make_server, blocker)
    bob = await connect(server, made)
    await bob.join("nowhere", "bob", "Bob", mode="sfu")
    refused = await bob.call("recording-start", {})
    assert refused["ok"] is False and refused["error"] == "recording_failed", refused
    assert server.server.recordings.active == {} and bob.received("recording-state") == []
    bob_again = await connect(server, made)
    assert (await bob_again.join("nowhere", "bob2", "Bob"))["recording"] == {"recording": False}


# -- real media: publishers' colours and tones in the file ----------------------------------


class ColourTrack(MediaStreamTrack):
    """Solid-colour video, 320x240 at 15 fps, in real time."""

    kind = "video"

    def __init__(self, rgb: tuple[int, int, int]) -> None:
        super().__init__()
        picture = np.zeros((240, 320, 3), np.uint8)
        picture[:] = rgb
        self.frame = VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
        self.count = 0
        self._start: float | None = None

    async def recv(self) -> VideoFrame:
        loop = asyncio.get_running_loop()
        self._start = self._start if self._start is not None else loop.time()
        wait = self._start + self.count / 15 - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = VideoFrame.from_ndarray(self.frame.to_ndarray(), format="yuv420p")
        frame.pts = self.count * 6000
        frame.time_base = fractions.Fraction(1, 90000)
        self.count += 1
        return frame


class SineTrack(MediaStreamTrack):
    """A sine tone (20 ms frames, real time)."""

    kind = "audio"

    def __init__(self, freq: float, amplitude: float = 0.25) -> None:
        super().__init__()
        self.freq, self.amplitude = freq, amplitude * 32767
        self.samples = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        loop = asyncio.get_running_loop()
        self._start = self._start if self._start is not None else loop.time()
        wait = self._start + self.samples / 48000 - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        t = (self.samples + np.arange(960)) / 48000
        data = (self.amplitude * np.sin(2 * math.pi * self.freq * t)).astype(np.int16)
        frame = AudioFrame.from_ndarray(data.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self.samples
        frame.time_base = fractions.Fraction(1, 48000)
        self.samples += 960
        return frame


COLOURS = {"alice": (230, 30, 30), "bob": (30, 200, 40), "carol": (30, 60, 230)}
TONES = {"alice": 350.0, "bob": 800.0, "carol": 1500.0}


def colour_share(picture: np.ndarray, rgb: tuple[int, int, int]) -> float:
    """The fraction of the picture within a small distance of this colour."""
    close = np.all(np.abs(picture.astype(np.int16) - np.array(rgb)) < 45, axis=2)
    return float(close.mean())


def tone_level(audio: np.ndarray, freq: float, start: float, end: float) -> float:
    """RMS amplitude of one frequency in [start, end) seconds (a windowed FFT bin)."""
    part = audio[int(start * 48000) : int(end * 48000)]
    spectrum = np.abs(np.fft.rfft(part * np.hanning(len(part))))
    freqs = np.fft.rfftfreq(len(part), 1 / 48000)
    band = spectrum[(freqs > freq - 15) & (freqs < freq + 15)]
    return float(band.max() * 2 / np.hanning(len(part)).sum() / math.sqrt(2))


async def publish_everyone(
    server: RunningServer,
    made: list[Client],
    room: str,
    tracks: dict[str, dict[str, Any]],
    peers: dict[str, SfuPeer],
) -> None:
    """Each user joins ``room`` and publishes its tracks (into ``peers``, for the caller to
    close); returns once every track's frames reach the room's router."""
    for user, published in tracks.items():
        client = await connect(server, made)
        peers[user] = await SfuPeer(SocketRouter(client, room, user.title()), user).join()
        ack = await peers[user].publish(published)
        assert ack["ok"], ack
    router = server.server.rooms.get(room).router
    count = sum(len(published) for published in tracks.values())
    await until(
        lambda: (
            len(router.producers) == count and all(p.frames > 10 for p in router.producers.values())
        ),
        timeout=30,
        what=f"{count} tracks' media at the server",
    )


@pytest.mark.webrtc
async def test_recording_holds_every_publishers_colour_and_tone(
    netns: None, make_server: MakeServer, tmp_path: Path, made: list[Client]
) -> None:
    server = await start_server(make_server, tmp_path)
    peers: dict[str, SfuPeer] = {}
    try:
        tracks = {
            user: {"camera": ColourTrack(COLOURS[user]), "microphone": SineTrack(TONES[user])}
            for user in ("alice", "bob", "carol")
        }
        await publish_everyone(server, made, "media", tracks, peers)
        alice = made[0]
        started = await alice.call("recording-start", {})
        assert started["ok"], started
        recording_id = started["recordingId"]
        # The router's audio levels name an active speaker (the speaker layout's main tile).
        active = server.server.recordings.active["media"]
        await until(lambda: active.stage.speaker in TONES, what="an active speaker")
        await asyncio.sleep(3)
        await peers["carol"].close()
        assert (await made[2].call("leave-room", {}))["ok"]
        await asyncio.sleep(3)
        stopped = await alice.call("recording-stop", {})
        assert stopped["ok"], stopped
    finally:
        for peer in peers.values():
            await peer.close()
    meta = server.server.recordings.store.get(recording_id)
    assert meta is not None and meta["state"] == "stopped", meta
    carol = next(p for p in meta["participants"] if p["user_id"] == "carol")
    left = carol["sessions"][0]["left_offset"]
    assert left is not None and 2.5 < left < 4.5, left
    pictures, audio, duration = decode(tmp_path / meta["file"])
    assert abs(duration - meta["duration"]) < 0.3
    assert 5.5 < duration < 9, duration  # about the 6 s between start and stop
    # The thumbnail, from the middle of the file: alice's and bob's cameras (#18).
    with av.open(str(tmp_path / meta["thumbnail"])) as jpeg:
        thumb = next(jpeg.decode(video=0)).to_ndarray(format="rgb24")
    assert colour_share(thumb, COLOURS["alice"]) > 0.05, "alice not in the thumbnail"
    assert colour_share(thumb, COLOURS["bob"]) > 0.05, "bob not in the thumbnail"

    # Pictures: all three colours while carol is there; alice and bob only after she left.
    def shares(t0: float, t1: float) -> dict[str, float]:
        chosen = [p for t, p in pictures if t0 <= t < t1]
        assert chosen, (t0, t1)
        return {u: min(colour_share(p, c) for p in chosen) for u, c in COLOURS.items()}

    before, after = shares(1.0, left - 0.5), shares(left + 1.0, duration - 0.2)
    assert all(share > 0.08 for share in before.values()), before
    assert after["alice"] > 0.08 and after["bob"] > 0.08, after
    assert after["carol"] < 0.001, after

    # Sound: each tone while its speaker is there, carol's gone once she left.
    levels_before = {u: tone_level(audio, f, 1.0, left - 0.5) for u, f in TONES.items()}
    levels_after = {u: tone_level(audio, f, left + 1.0, duration - 0.3) for u, f in TONES.items()}
    assert all(level > 0.03 for level in levels_before.values()), levels_before
    assert levels_after["alice"] > 0.03 and levels_after["bob"] > 0.03, levels_after
    assert levels_after["carol"] < levels_before["carol"] / 20, (levels_before, levels_after)


@pytest.mark.webrtc
async def test_auto_start_and_a_camera_turned_off(
    netns: None, make_server: MakeServer, tmp_path: Path, made: list[Client]
) -> None:
    server = await start_server(make_server, tmp_path, auto_start=True)
    watcher = await connect(server, made)
    await watcher.join("auto", "watcher", "Watcher", mode="sfu")
    await asyncio.sleep(0.6)  # joining alone starts nothing
    assert watcher.received("recording-state") == []
    client = await connect(server, made)
    peer = await SfuPeer(SocketRouter(client, "auto", "Pat"), "pat").join()
    loop = asyncio.get_running_loop()
    try:
        assert (await peer.publish({"camera": ColourTrack((230, 30, 30))}))["ok"]
        [state] = await watcher.wait_for("recording-state", timeout=20)
        started = loop.time()
        assert state["recording"] is True and state["startedBy"] is None
        await asyncio.sleep(2)
        # Camera off: the tile turns to a placeholder at once, not after the stale timeout.
        assert (await client.call("sfu-unpublish", {}))["ok"]
        off = loop.time() - started
        await asyncio.sleep(1.5)
        assert (await watcher.call("recording-stop", {}))["ok"]
    finally:
        await peer.close()
    meta = server.server.recordings.store.get(state["recordingId"])
    assert meta is not None and meta["state"] == "stopped"
    pictures, _, _ = decode(tmp_path / meta["file"])
    red = [(t, colour_share(p, (230, 30, 30))) for t, p in pictures]
    assert max(share for t, share in red if t < off) > 0.08, red
    assert max(share for t, share in red if off + 0.7 < t < off + 1.4) < 0.001, (off, red)


@pytest.mark.webrtc
async def test_a_live_layout_change_reaches_the_next_and_the_running_recording(
    netns: None, make_server: MakeServer, tmp_path: Path, made: list[Client]
) -> None:
    """The operator's way: ``sfu settings set recording.layout`` against the live server."""
    server = await start_server(make_server, tmp_path)
    auth = ("--server", server.url, "--token", TOKEN)

    async def cli(*args: str) -> Any:
        # The CLI blocks on HTTP while the server under test runs on this event loop.
        result = await asyncio.to_thread(sfu, *args)
        assert result.exit_code == 0, result.output
        return result

    peers: dict[str, SfuPeer] = {}
    loop = asyncio.get_running_loop()
    try:
        tracks = {user: {"camera": ColourTrack(COLOURS[user])} for user in ("alice", "bob")}
        await publish_everyone(server, made, "lay", tracks, peers)
        # The next recording takes the new default: speaker (alice large, bob in the strip).
        await cli("settings", "set", "recording.layout", "speaker", *auth)
        result = await cli("record", "start", "lay", *auth)
        recording_id = result.stdout.strip().rsplit(": ", 1)[1]
        [state] = await made[0].wait_for("recording-state")
        assert state["layout"] == "speaker"
        started = loop.time()
        await asyncio.sleep(3)
        # ... and a running recording is re-laid out: the room is told, the picture changes.
        await cli("settings", "set", "recording.layout", "grid", *auth)
        switched = loop.time() - started
        [_, state] = await made[0].wait_for("recording-state", count=2)
        assert state["recording"] is True and state["layout"] == "grid"
        await asyncio.sleep(3)
        await cli("record", "stop", "lay", *auth)
    finally:
        for peer in peers.values():
            await peer.close()
    meta = server.server.recordings.store.get(recording_id)
    assert meta is not None and meta["layout"] == "grid", meta
    pictures, _, duration = decode(tmp_path / meta["file"])

    def shares(t0: float, t1: float) -> tuple[float, float]:
        chosen = [p for t, p in pictures if t0 <= t < t1]
        assert len(chosen) > 5, (t0, t1)
        return (
            float(np.median([colour_share(p, COLOURS["alice"]) for p in chosen])),
            float(np.median([colour_share(p, COLOURS["bob"]) for p in chosen])),
        )

    # The recording runs `latency` behind the clock, so the switch shows up to 1 s earlier.
    alice, bob = shares(0.5, switched - 1.5)
    assert alice > 3 * bob > 0, (alice, bob)  # speaker: one big tile, one small
    alice, bob = shares(switched + 0.5, duration - 0.3)
    assert 0.7 < alice / bob < 1.4, (alice, bob)  # grid: two equal tiles


async def test_start_up_closes_the_books_on_a_recording_a_crash_interrupted(
    make_server: MakeServer, tmp_path: Path
) -> None:
    """A sidecar left saying "recording" by a killed server: the next start-up lists it as
    interrupted with the duration its file really plays, written back to the sidecar."""
    rec_id = "standup-20260301T120000Z-k3J9qXb2Lm"
    with av.open(str(tmp_path / f"{rec_id}.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(25):  # 2.5 s at 10 fps
            frame = VideoFrame.from_ndarray(np.full((48, 64, 3), 200, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    sidecar = {
        "id": rec_id,
        "file": f"{rec_id}.mp4",
        "room": "standup",
        "state": "recording",
        "start": "2026-03-01T12:00:00Z",
        "duration": None,
    }
    (tmp_path / f"{rec_id}.json").write_text(json.dumps(sidecar))
    server = await start_server(make_server, tmp_path)
    async with aiohttp.ClientSession(headers=ADMIN) as http:
        async with http.get(f"{server.url}/api/recordings/{rec_id}") as resp:
            meta = await resp.json()
    assert meta["state"] == "interrupted" and abs(meta["duration"] - 2.5) < 0.2, meta
    assert meta["end"] > meta["start"]
    on_disk = json.loads((tmp_path / f"{rec_id}.json").read_text())
    assert on_disk["duration"] == meta["duration"] and on_disk["stop_reason"] == "interrupted"


# -- P2P rooms: recorded through a publish-only uplink (#19) ---------------------------------


@pytest.mark.webrtc
async def test_a_p2p_room_is_recorded_through_publish_only_uplinks(
    netns: None, make_server: MakeServer, tmp_path: Path, made: list[Client]
) -> None:
    """While a P2P room is recorded its participants publish to the server, which offers
    them nothing; a late joiner publishes too; the uplink is gone after the stop."""
    server = await start_server(make_server, tmp_path)
    rooms = server.server.rooms
    peers: dict[str, SfuPeer] = {}
    offers: list[str] = []

    async def join(user: str) -> Client:
        client = await connect(server, made)
        peers[user] = await SfuPeer(SocketRouter(client, "mesh", user.title(), "p2p"), user).join()
        client.sio.on("sfu-subscribe-offer", lambda data, u=user: offers.append(u))
        return client

    async def publish(user: str) -> None:
        tracks = {"camera": ColourTrack(COLOURS[user]), "microphone": SineTrack(TONES[user])}
        ack = await peers[user].publish(tracks)
        assert ack["ok"], ack

    def flowing(users: set[str]) -> bool:
        router = rooms.get("mesh").router
        producers = list(router.producers.values()) if router is not None else []
        return {p.user_id for p in producers if p.frames > 10} == users and len(producers) == (
            2 * len(users)
        )

    try:
        alice, bob = await join("alice"), await join("bob")
        # Not recorded: no media to the server at all.
        assert rooms.get("mesh").router is None
        assert (await alice.call("sfu-publish", {}))["error"] == "not_sfu_room"
        started = await alice.call("recording-start", {})
        assert started["ok"], started
        recording_id = started["recordingId"]
        [state] = await bob.wait_for("recording-state")
        assert state["recording"] is True and state["startedBy"] == "alice"
        router = rooms.get("mesh").router
        assert router is not None and set(router.participants) == {"alice", "bob"}
        await publish("alice")
        await publish("bob")
        await until(lambda: flowing({"alice", "bob"}), timeout=30, what="two uplinks")
        # The uplink only publishes: the mesh carries the call.
        for client in (alice, bob):
            ack = await client.call("sfu-subscribe", {})
            assert ack["error"] == "not_sfu_room", ack
        # A late joiner is in the recording at once and publishes too.
        carol = await join("carol")
        assert carol.received("recording-state") == []  # the join answer said it
        assert peers["carol"].router.ack["recording"]["recording"] is True  # type: ignore
        await publish("carol")
        await until(lambda: flowing({"alice", "bob", "carol"}), timeout=30, what="carol's uplink")
        await asyncio.sleep(3)
        await peers["bob"].close()
        assert (await bob.call("leave-room", {}))["ok"]
        await asyncio.sleep(3)
        stopped = await alice.call("recording-stop", {})
        assert stopped["ok"], stopped
        await until(lambda: rooms.get("mesh").router is None, what="the uplink closed")
        [_, state] = await alice.wait_for("recording-state", count=2)
        assert state["recording"] is False
        assert (await alice.call("sfu-publish", {}))["error"] == "not_sfu_room"
        # The server closed its side: the participants' uplink connections end.
        await until(
            lambda: all(
                peers[u].publish_pc.connectionState in ("closed", "failed")
                for u in ("alice", "carol")
            ),
            timeout=20,
            what="uplink connections closed",
        )
        assert offers == []

        # The administrator's REST start works in a P2P room too, and opens the uplink.
        async with aiohttp.ClientSession() as http:
            answer = await http.post(f"{server.url}/api/rooms/mesh/recording", headers=ADMIN)
            assert answer.status == 201, await answer.text()
            assert rooms.get("mesh").router is not None
            answer = await http.delete(f"{server.url}/api/rooms/mesh/recording", headers=ADMIN)
            assert answer.status == 200, await answer.text()
        await until(lambda: rooms.get("mesh").router is None, what="the uplink closed")
    finally:
        for peer in peers.values():
            await peer.close()

    meta = server.server.recordings.store.get(recording_id)
    assert meta is not None and meta["state"] == "stopped", meta
    sessions = {p["user_id"]: p["sessions"][0] for p in meta["participants"]}
    left = sessions["bob"]["left_offset"]
    assert left is not None and sessions["carol"]["joined_offset"] < left
    pictures, audio, duration = decode(tmp_path / meta["file"])

    def shares(t0: float, t1: float) -> dict[str, float]:
        chosen = [p for t, p in pictures if t0 <= t < t1]
        assert chosen, (t0, t1)
        return {u: min(colour_share(p, c) for p in chosen) for u, c in COLOURS.items()}

    before, after = shares(left - 2.0, left - 0.5), shares(left + 1.0, duration - 0.2)
    assert all(share > 0.08 for share in before.values()), before
    assert after["alice"] > 0.08 and after["carol"] > 0.08 and after["bob"] < 0.001, after
    levels = {u: tone_level(audio, f, left - 2.0, left - 0.5) for u, f in TONES.items()}
    assert all(level > 0.03 for level in levels.values()), levels
    assert tone_level(audio, TONES["bob"], left + 1.0, duration - 0.3) < levels["bob"] / 20


async def test_auto_start_records_a_p2p_room_once_someone_is_in_it(
    make_server: MakeServer, tmp_path: Path, made: list[Client]
) -> None:
    server = await start_server(make_server, tmp_path, auto_start=True)
    pat = await connect(server, made)
    answer = await pat.join("auto-p2p", "pat", "Pat", mode="p2p")
    assert answer["grants"]["record"] is True
    [state] = await pat.wait_for("recording-state", timeout=10)
    assert state["recording"] is True and state["startedBy"] is None
    router = server.server.rooms.get("auto-p2p").router
    assert router is not None and not router.participants["pat"].receives
    # Stopping is not undone by auto start; the uplink goes with the recording.
    assert (await pat.call("recording-stop", {}))["ok"]
    await asyncio.sleep(0.6)
    assert server.server.rooms.get("auto-p2p").router is None
    assert len(pat.received("recording-state")) == 2
