"""The load generator's own cost: ``sfu loadtest`` decoding against ``--replay``, same work.

Starts ``sfu serve`` (loopback inside the namespace) and runs the load test in this process,
so the generator's CPU is this process's (all threads: aiortc's encoder and decoder threads
too) over the measuring window only (from the test's "measuring" step to its "closing"),
and the server's is its process's over the same window. Scenarios, alternating:

- ``decode``: P publishers encoding per frame, S subscribers decoding every frame;
- ``replay``: the same P x S with --replay (nothing encoded or decoded per frame), the
  accuracy check: it must count what the decoding subscribers count;
- ``replay-large``: --replay at the size the issue asks for (10 publishers, 100 video
  streams, with audio).

    scripts/netns-run .venv/bin/python benchmarks/loadgen.py --repeat 2

Figures are % of one core; on a shared 2-core machine compare the scenarios of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.signaling import cpu_seconds, start_node  # noqa: E402
from sfu.loadtest import run_loadtest  # noqa: E402


async def scenario(
    name: str, url: str, publishers: int, subscribers: int, args: argparse.Namespace
) -> dict[str, Any]:
    marks: dict[str, tuple[float, float, float]] = {}  # step -> (wall, generator, server)
    server_pid = args.server_pid

    def progress(message: str) -> None:
        step = message.split()[0]
        if step in ("measuring", "closing"):
            marks[step] = (time.monotonic(), time.process_time(), cpu_seconds(server_pid))

    result = await run_loadtest(
        url,
        f"{name}-{time.monotonic_ns()}",
        publishers=publishers,
        subscribers=subscribers,
        seconds=args.seconds,
        width=args.width,
        height=args.height,
        noise=args.noise,
        timeout=60,
        progress=progress,
        replay=name.startswith("replay"),
        audio=name == "replay-large",
    )
    (w0, g0, s0), (w1, g1, s1) = marks["measuring"], marks["closing"]
    wall = w1 - w0
    data = result.as_dict()
    streams = publishers * subscribers
    subs = data["subscribers"]
    latencies = sorted(s["latencyMsP50"] for s in subs if s["latencyMsP50"] is not None)
    return {
        "scenario": name,
        "publishers": publishers,
        "videoStreams": streams,
        "generatorCpuPercent": round((g1 - g0) / wall * 100, 1),
        "generatorCpuPerStream": round((g1 - g0) / wall * 100 / streams, 3),
        "serverCpuPercent": round((s1 - s0) / wall * 100, 1),
        "delivered": data["delivered"],
        "unclean": sum(s["unclean"] for s in subs),
        "outOfOrder": sum(s["outOfOrder"] for s in subs),
        "latencyMsP50": latencies[len(latencies) // 2] if latencies else None,
        "clientSaturated": data["clientSaturated"],
        "errors": data["errors"][:3],
    }


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    proc, url = start_node("load", None, 100, SFU_ROOMS__MAX_PARTICIPANTS="200")
    args.server_pid = proc.pid
    results = []
    try:
        for _ in range(args.repeat):
            for name, p, s in (
                ("decode", args.publishers, args.subscribers),
                ("replay", args.publishers, args.subscribers),
                ("replay-large", 10, 10),
            ):
                result = await scenario(name, url, p, s, args)
                print(json.dumps(result), flush=True)
                results.append(result)
    finally:
        proc.terminate()
        proc.wait(30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--subscribers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--noise", type=int, default=24)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = asyncio.run(run(args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
