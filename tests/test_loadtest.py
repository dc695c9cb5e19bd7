"""``sfu loadtest``: synthetic aiortc participants against a running server over Socket.IO.

Frame counts are taken over a window that starts once every subscriber decoded its first
frame, and the bounds are loose (half the nominal rate) so a busy 2-core machine passes;
a server that forwards nothing, or forwards damaged or reordered pictures, still fails.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import sfu.loadtest
from sfu.cli import app
from sfu.loadtest import (
    FPS,
    LoadTestError,
    LoadTestResult,
    PublisherResult,
    SubscriberResult,
    run_loadtest,
)
from tests.conftest import Client, RunningServer, free_port

MakeServer = Callable[..., Awaitable[RunningServer]]
ROOT = Path(__file__).resolve().parent.parent
SECONDS = 3
MIN_FRAMES = 0.5 * FPS * SECONDS  # half the nominal rate over the window


async def sfu_cli(*args: str, timeout: float = 40) -> tuple[int, str, str]:
    """Runs ``python -m sfu ARGS`` without blocking the in-process server's event loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sfu",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def check_subscriber(sub: dict[str, Any], publishers: int) -> None:
    """Every publisher's video arrived, decoded intact and in order, at a plausible rate."""
    assert sub["tracks"] == publishers, sub
    assert sub["frames"] >= MIN_FRAMES * publishers, sub
    assert sub["minFps"] >= MIN_FRAMES / SECONDS, sub
    assert sub["outOfOrder"] == 0 and sub["unclean"] == 0, sub
    assert sub["firstFrameSeconds"] is not None and sub["firstFrameSeconds"] < 15, sub
    # Frame numbers map back to their capture time: a misread number would be far off.
    assert sub["latencyMsP50"] is not None and 0 < sub["latencyMsP50"] < 3000, sub


@pytest.mark.webrtc
async def test_loadtest_counts_decoded_frames(netns: None, make_server: MakeServer) -> None:
    server = await make_server()
    result = await run_loadtest(
        server.url, "load", publishers=1, subscribers=2, seconds=SECONDS, width=160, height=120
    )
    data = result.as_dict()
    assert data["ok"] and data["errors"] == [], data
    assert abs(data["seconds"] - SECONDS) < 1, data
    assert [s["userId"] for s in data["subscribers"]] == ["sub-1", "sub-2"]
    for sub in data["subscribers"]:
        check_subscriber(sub, publishers=1)
    [pub] = data["publishers"]
    assert pub["frames"] >= MIN_FRAMES and pub["kbps"] > 0, pub
    assert data["totalFrames"] == sum(s["frames"] for s in data["subscribers"])
    assert data["expectedFrames"] == pytest.approx(2 * FPS * data["seconds"], abs=1)
    # Everyone left: the room is gone from the server.
    await asyncio.sleep(0.2)
    assert server.server.rooms.get("load") is None


@pytest.mark.webrtc
async def test_cli_json(netns: None, make_server: MakeServer) -> None:
    server = await make_server()
    code, out, err = await sfu_cli(
        "loadtest",
        "--server",
        server.url,
        "--publishers",
        "2",
        "--subscribers",
        "1",
        "--seconds",
        str(SECONDS),
        "--video-size",
        "160x120",
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["room"].startswith("loadtest-") and data["videoSize"] == "160x120"
    assert data["ok"] and data["errors"] == [], data
    assert [p["userId"] for p in data["publishers"]] == ["pub-1", "pub-2"]
    [sub] = data["subscribers"]
    check_subscriber(sub, publishers=2)
    assert data["totalFrames"] == sub["frames"]


async def test_cli_unreachable_server() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, out, err = await sfu_cli("loadtest", "--server", url, "--seconds", "1", timeout=20)
    assert code == 1
    assert out == ""
    assert err.splitlines() == [f"sfu: cannot reach the server at {url}: Connection refused"]


async def test_refuses_a_p2p_room(server: RunningServer) -> None:
    # Without any media: the first subscriber's join already fails.
    client = await Client(server.url).connect()
    try:
        await client.join("meeting", "alice", mode="p2p")
        with pytest.raises(LoadTestError, match="'meeting' is a p2p room"):
            await run_loadtest(server.url, "meeting", seconds=1)
    finally:
        await client.close()


def test_help_and_bad_input() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["loadtest", "--help"])
    assert result.exit_code == 0 and "Usage: sfu loadtest" in result.stdout
    assert "Example" in result.stdout
    for args in (["--video-size", "640"], ["--video-size", "641x480"], ["--server", "ftp://x"]):
        result = runner.invoke(app, ["loadtest", *args])
        assert result.exit_code == 2, (args, result.output)
        assert result.stdout == "" and len(result.stderr.splitlines()) == 1, result.output


def test_table_and_a_missing_track(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report is printed, then a subscriber without video makes the exit code 1."""
    got = SubscriberResult("sub-1", 1, 290, 29.0, 29.0, 0.4, 0, 0, 75.0, 90.0)
    lost = SubscriberResult("sub-2", 0, 0, 0.0, 0.0, None, 0, 0, None, None)
    result = LoadTestResult(
        "http://127.0.0.1:9", "r", 320, 240, 10.0, 1.0, [PublisherResult("pub-1", 300, 30.0)],
        [got, lost], ["sub-2 received no video from pub-1"],
    )  # fmt: skip

    async def fake(url: str, room: str, **options: Any) -> LoadTestResult:
        assert options["publishers"] == 1 and options["width"] == 320
        return result

    monkeypatch.setattr(sfu.loadtest, "run_loadtest", fake)
    monkeypatch.setenv("COLUMNS", "200")
    out = CliRunner().invoke(app, ["loadtest", "--server", "http://127.0.0.1:9", "-r", "r"])
    assert out.exit_code == 1, out.output
    assert out.stderr == "sfu: sub-2 received no video from pub-1\n"
    rows = {line.split()[1]: line for line in out.stdout.splitlines() if "sub-" in line}
    assert "29.0" in rows["sub-1"] and "0.40 s" in rows["sub-1"] and "75 / 90 ms" in rows["sub-1"]
    assert "0/1" in rows["sub-2"] and "- / - ms" in rows["sub-2"]
    assert "total: 290 frames decoded of 600 sent (48.3%)" in out.stdout


@pytest.mark.webrtc
async def test_replay_checks_every_frame_without_decoding(
    netns: None, make_server: MakeServer
) -> None:
    """--replay: looped pre-encoded video and audio; every frame known by its checksum."""
    server = await make_server()
    result = await run_loadtest(
        server.url,
        "replay",
        publishers=2,
        subscribers=2,
        seconds=SECONDS,
        width=160,
        height=120,
        replay=True,
        audio=True,
    )
    data = result.as_dict()
    assert data["ok"] and data["errors"] == [], data
    for sub in data["subscribers"]:
        check_subscriber(sub, publishers=2)
        assert sub["audioTracks"] == 2, sub  # each publisher's tone arrived too
