"""`sfu record` and `sfu recordings` against a real server process: the happy paths, the
one-line errors, and SIGTERM finishing the file of a recording in progress."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from tests.conftest import Client, free_port
from tests.test_cli import _wait_for_health, create_room, one_line_error, sfu

TOKEN = "cli-recording-token"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SFU_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)


def start_server(directory: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SFU_")}
    env.update(
        SFU_AUTH__ADMIN_TOKEN=TOKEN,
        SFU_SERVER__SHUTDOWN_GRACE_SECONDS="0",
        SFU_RECORDING__DIRECTORY=str(directory),
        SFU_RECORDING__WIDTH="320",
        SFU_RECORDING__HEIGHT="240",
        SFU_RECORDING__FPS="15",
        SFU_RECORDING__PRESET="ultrafast",
        SFU_RECORDING__ENCODER_THREADS="1",
        SFU_RECORDING__MIN_FREE_MB="0",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "sfu", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_health(proc, url)
    except BaseException:
        stop_server(proc)
        raise
    return proc, url


def stop_server(proc: subprocess.Popen[str]) -> int:
    proc.terminate()
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    directory = tmp_path_factory.mktemp("recordings")
    proc, url = start_server(directory)
    try:
        yield url, directory
    finally:
        stop_server(proc)


@pytest.mark.parametrize(
    "command",
    [
        ["record"],
        ["record", "start"],
        ["record", "stop"],
        ["recordings"],
        ["recordings", "list"],
        ["recordings", "info"],
        ["recordings", "download"],
        ["recordings", "delete"],
        ["recordings", "prune"],
    ],
)
def test_every_recording_command_has_help(command: list[str]) -> None:
    result = sfu(*command, "--help")
    assert result.exit_code == 0
    assert "Usage: sfu " + " ".join(command) in result.stdout
    assert "Example" in result.stdout


async def test_record_and_manage_recordings(live: tuple[str, Path], tmp_path: Path) -> None:
    url, directory = live
    auth = ["--server", url, "--token", TOKEN]
    alice = await Client(url).connect()
    try:
        ack = await alice.join("cli-rec", "alice", "Alice", mode="sfu")
        result = sfu("record", "start", "cli-rec", "--layout", "speaker", *auth)
        assert result.exit_code == 0, result.output
        recording_id = result.stdout.strip().rsplit(": ", 1)[1]
        [state] = await alice.wait_for("recording-state")
        assert state["recordingId"] == recording_id and state["layout"] == "speaker"
        line = one_line_error(sfu("record", "start", "cli-rec", *auth), 1)
        assert "409" in line and "already being recorded" in line
        await asyncio.sleep(1.2)
        result = sfu("record", "stop", "cli-rec", *auth)
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith(f"stopped {recording_id} of room cli-rec: ")
        assert " s, " in result.stdout and "KB" in result.stdout
        line = one_line_error(sfu("record", "stop", "cli-rec", *auth), 1)
        assert "not being recorded" in line
    finally:
        await alice.close()

    listed = json.loads(sfu("recordings", "list", "--json", *auth).stdout)["recordings"]
    assert [m["id"] for m in listed] == [recording_id]
    row = next(r for r in sfu("recordings", "list", *auth).stdout.splitlines() if "cli-rec" in r)
    assert recording_id in row and "stopped" in row

    info = sfu("recordings", "info", recording_id, *auth)
    assert info.exit_code == 0, info.output
    assert "room: cli-rec" in info.stdout and "state: stopped" in info.stdout
    assert "320x240 @ 15 fps" in info.stdout
    assert "Alice" in next(r for r in info.stdout.splitlines() if "alice" in r)
    meta = json.loads(sfu("recordings", "info", recording_id, "--json", *auth).stdout)
    assert meta["duration"] > 1.0 and meta["participants"][0]["user_id"] == "alice"

    # Downloads: to the recording's own name here, or -o; never over a file without --force.
    result = sfu("recordings", "download", recording_id, *auth)
    assert result.exit_code == 0, result.output
    saved = tmp_path / meta["file"]
    assert saved.read_bytes() == (directory / meta["file"]).read_bytes()
    line = one_line_error(sfu("recordings", "download", recording_id, *auth), 2)
    assert "exists" in line and "--force" in line
    assert sfu("recordings", "download", recording_id, "--force", *auth).exit_code == 0
    # A participant's room token is enough to download that room's recording.
    room_token = ["--server", url, "--token", ack["recordingToken"]]
    result = sfu("recordings", "download", recording_id, "-o", "mine.mp4", "--json", *room_token)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["size"] == saved.stat().st_size
    with av.open(str(tmp_path / "mine.mp4")) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames >= 15
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".part")]

    # A token that grants nothing: refused, and nothing written.
    line = one_line_error(sfu("recordings", "info", recording_id, "--server", url, "-t", "x"), 1)
    assert "401" in line
    line = one_line_error(
        sfu("recordings", "download", recording_id, "-o", "no.mp4", "--server", url, "-t", "x"), 1
    )
    assert "401" in line and not (tmp_path / "no.mp4").exists()
    line = one_line_error(sfu("recordings", "delete", recording_id, *room_token), 1)
    assert "403" in line

    result = sfu("recordings", "delete", recording_id, *auth)
    assert result.exit_code == 0 and result.stdout == f"deleted {recording_id}\n"
    line = one_line_error(sfu("recordings", "info", recording_id, *auth), 1)
    assert f"no recording '{recording_id}'" in line
    line = one_line_error(sfu("recordings", "download", recording_id, *auth), 1)
    assert f"no recording '{recording_id}'" in line
    line = one_line_error(sfu("recordings", "delete", recording_id, *auth), 1)
    assert f"no recording '{recording_id}'" in line
    assert sfu("recordings", "list", *auth).stdout == "no recordings\n"
    result = sfu("recordings", "prune", "--json", *auth)
    assert result.exit_code == 0 and json.loads(result.stdout) == {"deleted": []}
    assert sfu("recordings", "prune", *auth).stdout == "deleted 0 recording(s)\n"


def test_record_errors(live: tuple[str, Path]) -> None:
    url, _ = live
    auth = ["--server", url, "--token", TOKEN]
    line = one_line_error(sfu("record", "start", "nope", *auth), 1)
    assert "no room 'nope'" in line
    line = one_line_error(sfu("record", "stop", "nope", *auth), 1)
    assert "no room 'nope'" in line
    # A P2P room records too (through its participants' uplinks, #19).
    create_room(url, "cli-p2p", "p2p")
    started = sfu("record", "start", "cli-p2p", *auth)
    assert started.exit_code == 0 and started.stdout.startswith("recording room cli-p2p: ")
    assert sfu("record", "stop", "cli-p2p", *auth).exit_code == 0
    create_room(url, "cli-sfu", "sfu")
    line = one_line_error(sfu("record", "start", "cli-sfu", "--layout", "mosaic", *auth), 2)
    assert "--layout" in line
    line = one_line_error(sfu("record", "start", "cli-sfu", "--server", url), 1)
    assert "admin token is needed" in line
    line = one_line_error(sfu("record", "start", "cli-sfu", "--server", url, "-t", "wrong"), 1)
    assert "refused the token" in line
    line = one_line_error(sfu("recordings", "prune", "--server", url, "-t", "wrong"), 1)
    assert "refused the token" in line
    line = one_line_error(sfu("recordings", "list", "--server", url), 1)
    assert "token is needed" in line
    line = one_line_error(sfu("recordings", "info", "../etc", *auth), 2)
    assert "invalid recording id" in line
    dead = f"http://127.0.0.1:{free_port()}"
    for command in (["record", "start", "r"], ["recordings", "list"], ["recordings", "prune"]):
        line = one_line_error(sfu(*command, "--server", dead, "--token", TOKEN), 1)
        assert f"cannot reach the server at {dead}" in line


async def test_sigterm_finishes_the_recording(tmp_path: Path) -> None:
    directory = tmp_path / "recordings"
    proc, url = start_server(directory)
    alice = await Client(url).connect()
    try:
        await alice.join("night", "alice", "Alice", mode="sfu")
        result = sfu("record", "start", "night", "--json", "--server", url, "--token", TOKEN)
        assert result.exit_code == 0, result.output
        recording_id = json.loads(result.stdout)["recordingId"]
        await asyncio.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        await alice.close()
        if proc.poll() is None:
            stop_server(proc)
    meta = json.loads((directory / f"{recording_id}.json").read_text())
    assert meta["state"] == "stopped" and meta["stop_reason"] == "server shutdown", meta
    assert meta["duration"] >= 1.4
    with av.open(str(directory / meta["file"])) as container:
        times = [float(f.time) for f in container.decode(video=0)]
    assert times[-1] >= 1.3


def test_record_audio_only(live: tuple[str, Path]) -> None:
    url, directory = live
    auth = ["--server", url, "--token", TOKEN]
    create_room(url, "cli-audio", "sfu")
    result = sfu("record", "start", "cli-audio", "--layout", "audio", *auth)
    assert result.exit_code == 0, result.output
    recording_id = result.stdout.strip().rsplit(": ", 1)[1]
    result = sfu("record", "stop", "cli-audio", *auth)
    assert result.exit_code == 0, result.output
    info = sfu("recordings", "info", recording_id, *auth)
    assert (
        "layout: audio" in info.stdout and "video: none (audio only); audio: libopus" in info.stdout
    )
    meta = json.loads(sfu("recordings", "info", recording_id, "--json", *auth).stdout)
    assert meta["file"].endswith(".ogg") and meta["container"] == "ogg"
    with av.open(str(directory / meta["file"])) as container:
        assert (
            not container.streams.video and container.streams.audio[0].codec_context.name == "opus"
        )
    assert "audio" in sfu("record", "start", "--help").stdout
