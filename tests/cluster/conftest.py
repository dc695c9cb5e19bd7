"""Nodes of a cluster that share a real redis-server (the ``redis`` fixture, tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.conftest import Client, RunningServer
from tests.server.test_recording_events import until  # noqa: F401  (the cluster tests' poll)
from tests.support.redis_server import RedisServer

MakeServer = Callable[..., Awaitable[RunningServer]]
LEASE = 3.0  # short leases: a dead node is noticed within seconds


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
