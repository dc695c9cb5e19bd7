"""Forwarding with ``sfu serve --workers 2`` against ``--workers 1``, on the same work.

Starts a redis-server and the server itself (loopback inside the namespace), then R SFU
rooms, each with one publisher (synthetic VP8) and K subscribers (sfu/loadtest.py's peers,
in this process), the rooms made a heartbeat apart so the directory can place each on the
least-loaded worker. Over a window it reports each server process's CPU (% of one core), the
frames the subscribers decoded, and which worker runs each room. One worker does all rooms
on one core; two split them, so each room's forwarding has a core of its own:

    scripts/netns-run .venv/bin/python benchmarks/workers.py --rooms 2 --subscribers 3

On a 2-core machine the load generator shares the cores with the server, so the figures say
how the work spreads, not the capacity of a machine of its own (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.signaling import Redis, cpu_seconds, free_port  # noqa: E402
from sfu.loadtest import NumberedVideoTrack, SfuPeer, SocketIORouter  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def children(pid: int) -> list[int]:
    """The worker processes (not multiprocessing's resource tracker)."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        found = [int(c) for c in f.read().split()]
    return [c for c in found if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()]


def start(workers: int, redis_url: str) -> tuple[subprocess.Popen, str, list[int]]:
    port = free_port()
    env = {**os.environ, "SFU_SERVER__LOG_LEVEL": "WARNING", "SFU_SERVER__NODE_LEASE_SECONDS": "3"}
    args = [sys.executable, "-m", "sfu", "serve", "--port", str(port), "--node-id", "w"]
    args += ["--workers", str(workers), "--redis-url", redis_url]
    quiet = subprocess.DEVNULL
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=quiet, stderr=quiet)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(url + "/health", timeout=1):
                break
        except OSError:
            time.sleep(0.05)
    time.sleep(1.5)  # every worker up
    servers = [proc.pid] if workers == 1 else children(proc.pid)
    return proc, url, servers


async def measure(workers: int, args: argparse.Namespace, redis: Redis) -> dict[str, Any]:
    proc, url, servers = start(workers, redis.url)
    peers: list[SfuPeer] = []
    routers: list[SocketIORouter] = []
    try:
        for r in range(args.rooms):
            room = f"bench-{workers}-{r}"
            router = SocketIORouter(url, room)
            routers.append(router)
            publisher = await SfuPeer(router, f"pub{r}").join()
            peers.append(publisher)
            track = NumberedVideoTrack(args.noise, args.width, args.height)
            ack = await publisher.publish({"camera": track})
            assert ack["ok"], ack
            for k in range(args.subscribers):
                sub_router = SocketIORouter(url, room)
                routers.append(sub_router)
                peers.append(await SfuPeer(sub_router, f"sub{r}-{k}").join())
            await asyncio.sleep(1.5)  # a heartbeat: the next room sees this one's load
        await asyncio.sleep(args.warmup)
        frames_before = sum(len(x.numbers) for p in peers for x in p.received.values())
        before = {pid: cpu_seconds(pid) for pid in servers}
        t0 = time.monotonic()
        await asyncio.sleep(args.seconds)
        elapsed = time.monotonic() - t0
        cpu = {pid: (cpu_seconds(pid) - before[pid]) / elapsed * 100 for pid in servers}
        frames = sum(len(x.numbers) for p in peers for x in p.received.values()) - frames_before
        owners = redis_owners(redis, [f"bench-{workers}-{r}" for r in range(args.rooms)])
    finally:
        for peer in peers:
            await peer.close()
        for router in routers:
            await router.close()
        proc.terminate()
        proc.wait(30)
    expected = args.rooms * args.subscribers * 30 * elapsed
    return {
        "workers": workers,
        "serverCpuPercent": sorted(round(c, 1) for c in cpu.values()),
        "totalCpuPercent": round(sum(cpu.values()), 1),
        "busiestCpuPercent": round(max(cpu.values()), 1),
        "framesDecoded": frames,
        "framesExpected": round(expected),
        "roomsByWorker": owners,
    }


def redis_owners(redis: Redis, rooms: list[str]) -> dict[str, str]:
    out = {}
    for room in rooms:
        owner = subprocess.run(
            ["redis-cli", "-p", str(redis.port), "HGET", f"sfu:room:{room}", "owner"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        out[room] = owner
    return out


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        redis = Redis(Path(tmp))
        try:
            for _ in range(args.repeat):
                for workers in (1, 2):
                    result = await measure(workers, args, redis)
                    print(json.dumps(result), flush=True)
                    results.append(result)
        finally:
            redis.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=2)
    parser.add_argument("--subscribers", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--noise", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = asyncio.run(run(args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
