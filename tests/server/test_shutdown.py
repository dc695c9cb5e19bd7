"""`sfu serve` as a real process: start-up, the web app, and a clean stop on signals."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import Client, free_port


def start_server(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sfu", "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not answer /health")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_signal_tells_participants_and_exits_zero(sig: signal.Signals) -> None:
    proc, url = start_server(env={"SFU_SERVER__SHUTDOWN_GRACE_SECONDS": "0.2"})
    alice, bob = await Client(url).connect(), await Client(url).connect()
    try:
        await alice.join("r", "alice")
        await bob.join("r", "bob")
        proc.send_signal(sig)
        [notice] = await alice.wait_for("server-shutdown")
        assert notice["reason"]
        await bob.wait_for("server-shutdown")
        for _ in range(100):
            if not alice.sio.connected and not bob.sio.connected:
                break
            await asyncio.sleep(0.05)
        assert not alice.sio.connected and not bob.sio.connected
        assert await asyncio.to_thread(proc.wait, 15) == 0
        output = proc.stdout.read()
        assert "Traceback" not in output
        assert "shutting down" in output
    finally:
        if proc.poll() is None:
            proc.kill()
        await alice.close()
        await bob.close()


def test_invalid_setting_stops_start_up_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sfu", "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        env={**os.environ, "SFU_RECORDING__FPS": "fast"},
        timeout=30,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "recording.fps" in lines[0], result.stderr


def test_guide_port_variable_and_placeholder_page() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sfu", "serve"],
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                    page = response.read().decode()
                    break
            except OSError:
                assert time.monotonic() < deadline, "server did not answer on PORT"
                time.sleep(0.1)
        assert "<html" in page.lower()
    finally:
        proc.terminate()
        assert proc.wait(15) == 0
