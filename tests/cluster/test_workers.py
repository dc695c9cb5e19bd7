"""`sfu serve --workers N`: processes sharing one port and their rooms (through Redis)."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import urllib.request

from tests.cluster.conftest import until
from tests.conftest import Client, free_port
from tests.server.test_shutdown import start_server
from tests.support.redis_server import RedisServer


def scrape(url: str) -> tuple[str, int]:
    """One new connection's /metrics: (the worker's node id, joins it relayed elsewhere)."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        body = response.read().decode()
    node = re.search(r'^sfu_node\{node="([^"]+)"\} 1\.0$', body, re.M)
    relayed = re.search(
        r'^sfu_signaling_events_total\{event="join-room",result="relayed"\} (\S+)$', body, re.M
    )
    assert node is not None, body
    return node.group(1), int(float(relayed.group(1))) if relayed else 0


def test_more_than_one_worker_needs_redis() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sfu", "serve", "--port", str(free_port()), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--workers 2 needs server.redis_url" in lines[0], result.stderr


async def test_two_workers_share_the_port_and_the_rooms(redis: RedisServer) -> None:
    proc, url = start_server(
        "--workers", "2", "--node-id", "w", "--redis-url", redis.url,
        env={"SFU_SERVER__SHUTDOWN_GRACE_SECONDS": "0.2"},
    )  # fmt: skip
    clients: list[Client] = []
    try:
        seen: dict[str, int] = {}
        while len(seen) < 2:  # the kernel gives new connections to either worker
            node, relayed = await asyncio.to_thread(scrape, url)
            seen[node] = relayed
        assert sorted(seen) == ["w-1", "w-2"]
        assert sorted(redis.cli("SMEMBERS", "sfu:nodes").split()) == ["w-1", "w-2"]

        # People join one room until some land on the worker that does not run it.
        async def relayed_joins() -> int:
            counts: dict[str, int] = {}
            while len(counts) < 2:
                node, relayed = await asyncio.to_thread(scrape, url)
                counts[node] = relayed
            return sum(counts.values())

        for n in range(40):
            client = await Client(url).connect()
            clients.append(client)
            answer = await client.join("shared", f"user{n}")
            assert len(answer["participants"]) == n  # everyone before, wherever they are
            if n >= 1 and await relayed_joins() > 0:
                break
        assert await relayed_joins() > 0
        assert (await clients[-1].call("chat-message", {"message": "across workers"}))["ok"]
        for client in clients:
            await until(
                lambda c=client: any(
                    m["message"] == "across workers" for m in c.received("chat-message")
                ),
                what="the chat message at everyone",
            )
    finally:
        for client in clients:
            await client.close()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 20)
    output = proc.stdout.read() if proc.stdout else ""
    assert code == 0, output
    assert "Traceback" not in output, output
    assert "all 2 workers stopped" in output, output
