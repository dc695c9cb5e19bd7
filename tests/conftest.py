"""Shared fixtures: a real server on a free port, Socket.IO clients, the network guard."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import socketio
from aiohttp import web
from hypothesis import HealthCheck, settings

from sfu.server import Server
from sfu.settings import Settings, load_settings
from tests.support import hang
from tests.support.redis_server import RedisServer

# Hypothesis profiles of the fuzz suites (tests/server/test_fuzz_*.py). "ci", the default: a fixed
# budget, the same examples every run, no example database (no .hypothesis/ folder).
# "long" (--hypothesis-profile=long): a deep random search. Examples share one real server
# per test function, hence the fixture health check; a round trip per example is slow.
_FUZZ_COMMON: dict[str, Any] = {
    "deadline": None,
    "database": None,
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}
settings.register_profile("ci", max_examples=120, derandomize=True, **_FUZZ_COMMON)
settings.register_profile("long", max_examples=5000, derandomize=False, **_FUZZ_COMMON)
settings.load_profile("ci")  # the plugin's --hypothesis-profile, applied later, wins


# Links that tests/support/topology.py adds to the namespace (its tag: t<pid>s<segment>).
_TOPOLOGY_LINK = re.compile(r"^t\d+s\d+")


def inside_private_netns() -> bool:
    """True inside scripts/netns-run: the only interfaces are lo, the test veth pair and the
    links of topologies the test run built itself."""
    names = {name for _, name in socket.if_nameindex()}
    own = {n for n in names if n in ("lo", "sfu0", "sfu1") or _TOPOLOGY_LINK.match(n)}
    return names == own and {"sfu0", "sfu1"} <= names


@pytest.fixture
def netns() -> None:
    """Guard for WebRTC tests: they only run inside the private network namespace.

    Under CI=true a WebRTC test outside it fails instead of skipping, so a CI that forgot the
    wrapper cannot go green while testing nothing.
    """
    if inside_private_netns():
        return
    message = "WebRTC tests must run inside scripts/netns-run (private network namespace)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def free_udp_ports(count: int, addresses: tuple[str, ...] = ("10.213.0.1", "10.213.0.2")) -> int:
    """The first of ``count`` consecutive UDP ports free on every one of ``addresses``."""
    for base in range(42000, 60000, 97):
        held: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                for address in addresses:
                    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    held.append(sock)
                    sock.bind((address, port))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError("no free block of UDP ports")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningServer:
    """A real server (aiohttp app with Socket.IO) listening on 127.0.0.1."""

    def __init__(self, server: Server, runner: web.AppRunner, port: int) -> None:
        self.server = server
        self.runner = runner
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    @property
    def settings(self) -> Settings:
        return self.server.settings


@pytest.fixture
async def make_server() -> AsyncIterator[Callable[..., Awaitable[RunningServer]]]:
    """Starts servers with setting overrides, e.g. ``await make_server(rooms={"max_rooms": 2})``."""
    started: list[RunningServer] = []
    disarm = hang.arm()

    async def start(**sections: Any) -> RunningServer:
        port = free_port()
        settings = load_settings(
            overrides={
                **sections,
                "server": {"port": port, "shutdown_grace_seconds": 0, **sections.get("server", {})},
            }
        )
        server = Server(settings)
        runner = web.AppRunner(server.build_app(), shutdown_timeout=2)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        running = RunningServer(server, runner, port)
        started.append(running)
        return running

    yield start
    for running in started:
        await running.runner.cleanup()
    disarm()


@pytest.fixture
async def server(make_server: Callable[..., Awaitable[RunningServer]]) -> RunningServer:
    return await make_server()


class Client:
    """A python-socketio client that records every event it receives."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()

        @self.sio.on("*")
        async def _any(event: str, *args: Any) -> None:
            self.events.append((event, args[0] if args else None))
            self._changed.set()

    async def connect(self) -> Client:
        await self.sio.connect(self.url, transports=["websocket"], wait_timeout=10)
        return self

    async def call(self, event: str, data: Any = None, timeout: float = 10) -> Any:
        """Emits an event and returns its acknowledgement."""
        return await self.sio.call(event, data, timeout=timeout)

    async def join(self, room: str, user: str, name: str | None = None, **extra: Any) -> Any:
        ack = await self.call(
            "join-room", {"roomId": room, "userId": user, "userName": name or user, **extra}
        )
        assert ack["ok"], ack
        return ack

    def received(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]

    async def wait_for(self, event: str, count: int = 1, timeout: float = 10) -> list[Any]:
        """Waits until ``count`` events of this name have arrived; returns them all."""

        async def _wait() -> list[Any]:
            while len(self.received(event)) < count:
                self._changed.clear()
                await self._changed.wait()
            return self.received(event)

        return await asyncio.wait_for(_wait(), timeout)

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


@pytest.fixture
async def clients(server: RunningServer) -> AsyncIterator[Callable[[], Awaitable[Client]]]:
    """Factory of connected clients of the default server; all closed at the end."""
    made: list[Client] = []

    async def connect(url: str | None = None) -> Client:
        client = await Client(url or server.url).connect()
        made.append(client)
        return client

    yield connect
    for client in made:
        await client.close()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is needed (Debian package redis-server)")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
