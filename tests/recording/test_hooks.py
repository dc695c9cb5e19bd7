"""When a file is ready: the signed webhook (started, ended, failed; retried after a 500) and
the finalize command (its output in the sidecar), against a real server and a real receiver
on 127.0.0.1; neither delays the stop."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sfu.recording import finalize
from tests.conftest import free_port

TOKEN = "hooks-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "whsec-9f1c2e7a-not-in-any-log"
SLOW = 4.0  # seconds the receiver takes to answer an end event, and the finalize command


def verify(secret: str, headers: Any, body: bytes, tolerance: float = 300) -> bool:
    """What a receiver does (the snippet of docs/recording.md)."""
    timestamp = headers["X-SFU-Timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False  # too old: a replay
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(headers["X-SFU-Signature"], "sha256=" + expected.hexdigest())


class Receiver:
    """An aiohttp webhook receiver: the first request gets a 500, end events are slow."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        self.port = free_port()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status = 500 if not self.requests else 200
        self.requests.append((dict(request.headers), body, status))
        if request.headers["X-SFU-Event"] != "recording.started":
            await asyncio.sleep(SLOW)
        return web.Response(status=status)

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        return [(h["X-SFU-Event"], json.loads(b)) for h, b, s in self.requests if s == 200]

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


async def until(condition: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
    return value


FINALIZE = (
    "import sys, time; print('finalizing', sys.argv[1], flush=True); "
    f"time.sleep({SLOW}); print('uploaded'); sys.exit(3)"
)


async def test_webhook_events_are_signed_retried_and_never_delay_the_stop(
    make_server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with Receiver() as receiver:
        server = await make_server(
            auth={"admin_token": TOKEN},
            recording={
                "directory": str(tmp_path),
                "width": 320,
                "height": 240,
                "fps": 15,
                "preset": "ultrafast",
                "encoder_threads": 1,
                "min_free_mb": 0,
                "webhook_url": f"http://127.0.0.1:{receiver.port}/hook?token=url-secret-42",
                "webhook_secret": SECRET,
                "finalize_command": [sys.executable, "-c", FINALIZE],
            },
        )
        async with aiohttp.ClientSession(server.url, headers=ADMIN) as http:
            for room in ("good", "bad"):
                async with http.post("/api/rooms", json={"roomId": room, "mode": "sfu"}) as r:
                    assert r.status == 201
            async with http.post("/api/rooms/good/recording", json={}) as r:
                assert r.status == 201
                good = (await r.json())["recordingId"]
            await asyncio.sleep(1.0)
            began = time.monotonic()
            async with http.delete("/api/rooms/good/recording") as r:
                assert r.status == 200
                stopped = await r.json()
            stop_took = time.monotonic() - began
            # The stop answers once the file is complete, not after the slow command or receiver.
            assert stop_took < SLOW - 1, stop_took
            assert stopped["state"] == "stopped" and "finalize" not in stopped

            # A recording that fails: free space "below" an impossible minimum at once.
            server.settings.recording.min_free_mb = 10**9
            async with http.post("/api/rooms/bad/recording", json={"layout": "audio"}) as r:
                assert r.status == 201
                bad = (await r.json())["recordingId"]

            await until(lambda: len(receiver.events()) >= 4, timeout=60)
            events = receiver.events()
            kinds = {(kind, meta["id"]) for kind, meta in events}
            assert kinds == {
                ("recording.started", good),
                ("recording.ended", good),
                ("recording.started", bad),
                ("recording.failed", bad),
            }
            # Every request, retries included, carries a valid signature over its body.
            for headers, body, _ in receiver.requests:
                assert verify(SECRET, headers, body)
                assert not verify("another secret", headers, body)
            # The first request got a 500 and came again, the same delivery, signed anew.
            first, second = receiver.requests[0][0], receiver.requests[1][0]
            assert receiver.requests[0][2] == 500 and receiver.requests[1][2] == 200
            assert first["X-SFU-Delivery"] == second["X-SFU-Delivery"]
            assert first["X-SFU-Event"] == second["X-SFU-Event"] == "recording.started"

            # The end event carries the sidecar with the finalize command's result.
            ended = next(m for k, m in events if k == "recording.ended")
            done = ended["finalize"]
            assert done["exit_status"] == 3 and not done["timed_out"] and not done["error"]
            assert done["output"] == f"finalizing {tmp_path / stopped['file']}\nuploaded\n"
            assert SLOW <= done["duration"] < SLOW + 5
            failed = next(m for k, m in events if k == "recording.failed")
            assert failed["state"] == "error" and failed["error"] == "disk full"
            assert failed["layout"] == "audio"
            assert failed["finalize"]["error"] == "no file to finalize"  # failed before a byte
            async with http.get(f"/api/recordings/{good}") as r:
                assert (await r.json())["finalize"] == done  # and in the sidecar on disk
    # The server's logs (not the receiver's access log) hold neither secret.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("sfu"))
    assert SECRET not in ours and "url-secret-42" not in ours
    assert "HTTP 500; retry in 1 s" in ours  # the retry was logged


async def test_finalize_timeout_kills_the_command_and_keeps_the_end_of_its_output(tmp_path):
    script = "import time; print('x' * 20000 + 'the end', flush=True); time.sleep(30)"
    began = time.monotonic()
    result = await finalize.run(
        [sys.executable, "-c", script], tmp_path / "r.mp4", 1.0, {"id": "r", "state": "stopped"}
    )
    assert time.monotonic() - began < 5
    assert result["timed_out"] and result["exit_status"] == -9
    assert result["output_truncated"] and len(result["output"]) == finalize.OUTPUT_LIMIT
    assert result["output"].endswith("the end\n")


async def test_finalize_sees_the_recording_but_not_the_servers_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("SFU_AUTH__ADMIN_TOKEN", "never-passed-on")
    script = "import os; print(sorted(k for k in os.environ if k.startswith('SFU')))"
    result = await finalize.run(
        [sys.executable, "-c", script], tmp_path / "r.ogg", 5, {"id": "r", "state": "error"}
    )
    names = ["SFU_RECORDING_FILE", "SFU_RECORDING_ID", "SFU_RECORDING_SIDECAR"]
    assert result["output"].strip() == str([*names, "SFU_RECORDING_STATE"])
    # A command that cannot start: said so, without its arguments (they may be credentials).
    result = await finalize.run(["/nonexistent/upload", "--key=abc"], tmp_path / "r", 5, {})
    assert result["error"] == "cannot run upload: No such file or directory"
    assert "abc" not in str(result) and result["exit_status"] is None
