"""Signaling at scale: many Socket.IO clients joining rooms on one node, or spread over two.

Starts a redis-server and `sfu serve` processes itself (loopback only), then, per scenario,
N clients (python-socketio, WebSocket) in rooms of R join at a steady rate; each join's
acknowledgement time is recorded (join-ack). Then one member of every room sends a chat
message and the time until each other member has it is recorded (relay latency), split by
whether the receiver's socket is on the room's node or on the other one. Scenarios, in one
run so the figures compare:

- ``one``: one node without Redis (the embedded default, the baseline);
- ``one-redis``: one node with Redis (what the cluster machinery costs by itself);
- ``two``: two nodes on one Redis, clients alternating between them, so about half of every
  room's members are on the node that does not run it and their events are relayed.

    .venv/bin/python benchmarks/signaling.py --clients 1000 --room-size 10 --rate 100

The client side runs in this one process; its CPU is reported, so a saturated client shows.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import socketio

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Redis:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(directory)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(0.3)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def start_node(
    node_id: str, redis_url: str | None, clients: int, **settings: str
) -> tuple[subprocess.Popen, str]:
    """``sfu serve`` on a free port, its limits lifted for ``clients`` from one address;
    ``settings``: more environment (``SFU_...=value``)."""
    port = free_port()
    env = {
        **os.environ,
        "SFU_LIMITS__MAX_SOCKETS_PER_ADDRESS": "0",  # every client comes from 127.0.0.1
        "SFU_ROOMS__CREATE_PER_MINUTE": "100000",
        "SFU_ROOMS__MAX_ROOMS": str(clients),
        "SFU_SERVER__LOG_LEVEL": "WARNING",
        "SFU_SERVER__SHUTDOWN_GRACE_SECONDS": "0",
        **settings,
    }
    args = [sys.executable, "-m", "sfu", "serve", "--port", str(port), "--node-id", node_id]
    if redis_url:
        args += ["--redis-url", redis_url]
    quiet = subprocess.DEVNULL
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=quiet, stderr=quiet)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            with urllib.request.urlopen(url + "/health", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"node {node_id} did not start")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def scenario(
    name: str, urls: list[str], redis_url: str | None, args: argparse.Namespace
) -> dict[str, Any]:
    rooms = args.clients // args.room_size
    clients: list[tuple[str, socketio.AsyncClient, str, str]] = []  # (user, client, room, url)
    arrivals: dict[tuple[str, str], float] = {}  # (receiver, message) -> when
    joins: list[float] = []
    refused: list[str] = []
    interval = 1 / args.rate
    started = time.perf_counter()

    async def one(i: int) -> None:
        # Every room gets members on every node (the room runs on one of them).
        user, room, url = f"u{i}", f"room-{i % rooms}", urls[(i // rooms) % len(urls)]
        sio = socketio.AsyncClient(reconnection=False)

        @sio.on("chat-message")
        async def _chat(message: dict[str, Any]) -> None:
            if message["userId"] != user:
                arrivals[(user, message["message"])] = time.perf_counter()

        await sio.connect(url, transports=["websocket"], wait_timeout=30)
        t0 = time.perf_counter()
        ack = await sio.call(
            "join-room", {"roomId": room, "userId": user, "userName": user}, timeout=60
        )
        if ack.get("ok"):
            joins.append(time.perf_counter() - t0)
        else:
            refused.append(str(ack.get("error")))
        clients.append((user, sio, room, url))

    tasks = []
    for i in range(args.clients):
        await asyncio.sleep(max(0.0, started + i * interval - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    join_seconds = time.perf_counter() - started
    placed = await owners(redis_url, urls, rooms)
    await asyncio.sleep(1)

    # One chat message per room; who gets it when, by where the receiver's socket is.
    sent: dict[str, float] = {}
    senders: dict[str, str] = {}
    for user, sio, room, _ in clients:
        if room not in senders:
            senders[room] = user
            sent[room] = time.perf_counter()
            await sio.emit("chat-message", {"message": room})
            await asyncio.sleep(interval)
    await asyncio.sleep(3)
    local: list[float] = []
    relayed: list[float] = []
    missing = 0
    for user, _, room, url in clients:
        if senders[room] == user:
            continue
        got = arrivals.get((user, room))
        if got is None:
            missing += 1
            continue
        on_owner = placed.get(room, url) == url
        (local if on_owner else relayed).append((got - sent[room]) * 1000)
    for _, sio, _, _ in clients:
        await sio.disconnect()

    def figures(values: list[float]) -> dict[str, Any]:
        return {
            "n": len(values),
            "p50": round(percentile(values, 50), 1),
            "p99": round(percentile(values, 99), 1),
        }

    return {
        "scenario": name,
        "joined": len(joins),
        "refused": refused[:5],
        "joinSeconds": round(join_seconds, 2),
        "joinAckMs": figures([j * 1000 for j in joins]),
        "chatMs": {"sameNode": figures(local), "otherNode": figures(relayed), "missing": missing},
    }


async def owners(redis_url: str | None, urls: list[str], rooms: int) -> dict[str, str]:
    """room -> the URL of the node that runs it (from the directory)."""
    if redis_url is None:
        return {}
    from redis.asyncio import Redis as Client

    nodes = {"a": urls[0], "b": urls[-1]}
    client = Client.from_url(redis_url, decode_responses=True)
    found = {}
    for i in range(rooms):
        owner = await client.hget(f"sfu:room:room-{i}", "owner")
        if owner:
            found[f"room-{i}"] = nodes[owner]
    await client.aclose()
    return found


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenarios:
            redis = Redis(Path(tmp)) if name != "one" else None
            redis_url = redis.url if redis else None
            nodes = [start_node("a", redis_url, args.clients)]
            if name == "two":
                nodes.append(start_node("b", redis_url, args.clients))
            urls = [u for _, u in nodes]
            before = {p.pid: cpu_seconds(p.pid) for p, _ in nodes}
            me = resource.getrusage(resource.RUSAGE_SELF)
            try:
                result = await scenario(name, urls, redis_url, args)
            finally:
                after = {p.pid: cpu_seconds(p.pid) for p, _ in nodes}
                mine = resource.getrusage(resource.RUSAGE_SELF)
                for proc, _ in nodes:
                    proc.terminate()
                    proc.wait(20)
                if redis:
                    redis.stop()
            result["serverCpuSeconds"] = round(sum(after[p] - before[p] for p in after), 2)
            result["clientCpuSeconds"] = round(
                mine.ru_utime + mine.ru_stime - me.ru_utime - me.ru_stime, 2
            )
            results.append(result)
            print(json.dumps(result), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--room-size", type=int, default=10)
    parser.add_argument("--rate", type=float, default=100, help="joins per second")
    parser.add_argument("--scenarios", nargs="+", default=["one", "one-redis", "two"])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    gc.freeze()  # the client's own pauses out of the figures, as the server does
    results = asyncio.run(run(args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
