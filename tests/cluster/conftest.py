"""A real redis-server per test, and nodes that share it (in this process, or as processes)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Client, RunningServer, free_port

MakeServer = Callable[..., Awaitable[RunningServer]]
LEASE = 3.0  # short leases: a dead node is noticed within seconds


class RedisServer:
    """Debian's redis-server on a free loopback port, without persistence."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ping = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
            )
            if ping.stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is needed (Debian package redis-server)")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def node(redis: RedisServer, make_server: MakeServer) -> Callable[..., Awaitable[RunningServer]]:
    # (Redis first: it stops after the nodes.)
    """Starts a node of the cluster in this process: ``await node("a")``."""

    async def start(node_id: str, **sections: Any) -> RunningServer:
        server = sections.pop("server", {})
        return await make_server(
            server={
                "redis_url": redis.url,
                "node_id": node_id,
                "node_lease_seconds": LEASE,
                **server,
            },
            **sections,
        )

    return start


async def stop(node: RunningServer) -> None:
    """A node stops as on SIGTERM: its rooms released, its sockets told and closed."""
    await node.runner.cleanup()


@pytest.fixture
async def made() -> AsyncIterator[list[Client]]:
    clients: list[Client] = []
    yield clients
    for client in clients:
        await client.close()


async def connect(node: RunningServer, made: list[Client]) -> Client:
    client = await Client(node.url).connect()
    made.append(client)
    return client


async def until(condition: Callable[[], Any], timeout: float = 10, what: str = "") -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := condition()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.05)
    return value
