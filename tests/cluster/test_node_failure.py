"""Nodes as real `sfu serve` processes: one killed (SIGKILL) while it runs a room."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.request

from tests.cluster.conftest import LEASE, until
from tests.conftest import Client
from tests.server.test_shutdown import start_server
from tests.support.redis_server import RedisServer


async def test_a_killed_nodes_room_is_taken_over_and_its_participants_rejoin(
    redis: RedisServer,
) -> None:
    env = {"SFU_SERVER__NODE_LEASE_SECONDS": str(LEASE), "SFU_SERVER__REDIS_URL": redis.url}
    a, a_url = start_server("--node-id", "a", env=env)
    b, b_url = start_server("--node-id", "b", env=env)
    clients: list[Client] = []
    try:
        alice = await Client(a_url).connect()
        bob = await Client(b_url).connect()
        clients += [alice, bob]
        await alice.join("k", "alice", "Alice", mode="sfu")
        await alice.call("chat-message", {"message": "kept"})
        joined = await bob.join("k", "bob", "Bob")  # on b, the room on a
        assert joined["mode"] == "sfu"
        await until(
            lambda: "kept" in redis.cli("HGET", "sfu:room:k", "doc"), what="a's doc written"
        )

        a.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        # b notices a's lease ran out and closes bob's socket: his app would rejoin now.
        await until(lambda: not bob.sio.connected, timeout=LEASE * 3, what="bob disconnected")
        noticed = time.monotonic() - killed
        assert noticed <= LEASE + LEASE / 3 + 1.5, noticed  # lease + one heartbeat (+ slack)

        bob2 = await Client(b_url).connect()
        clients.append(bob2)
        back = await bob2.join("k", "bob", "Bob", rejoinToken=joined["rejoinToken"])
        assert back["mode"] == "sfu"  # taken over by b, as the SFU room it was
        assert [m["message"] for m in back["chatHistory"]] == ["kept"]
        assert [p["userId"] for p in back["participants"]] == []  # alice died with a
        assert redis.cli("HGET", "sfu:room:k", "owner") == "b"
        assert "a" not in redis.cli("SMEMBERS", "sfu:nodes").split()
        raw = await asyncio.to_thread(lambda: urllib.request.urlopen(b_url + "/health").read())
        health = json.loads(raw)
        assert health["node"] == "b" and health["redis"] == "ok"
    finally:
        for client in clients:
            await client.close()
        for proc in (a, b):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (a, b):
            try:
                proc.wait(15)
            except Exception:
                proc.kill()
    output = b.stdout.read() if b.stdout else ""
    assert "Traceback" not in output, output
    assert "nodes lost (lease expired): a" in output, output
    assert b.returncode == 0 and a.returncode == -signal.SIGKILL
