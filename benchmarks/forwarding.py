"""Server CPU of the SFU's encoded forwarding vs decoding once and re-encoding per subscriber.

One publisher (synthetic 640x480 VP8 at 30 fps) and K subscribers, in this process; the
server in a child process, so its CPU time is measured alone. ``sfu`` is the router of
sfu/media; ``naive`` is aiortc's MediaRelay (one decode, one encode per subscriber).
Must run inside the private network namespace:

    scripts/netns-run .venv/bin/python benchmarks/forwarding.py --subscribers 1 2 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.contrib.media import MediaRelay  # noqa: E402

from sfu.loadtest import NumberedVideoTrack, SfuPeer  # noqa: E402
from sfu.media.router import Router  # noqa: E402
from sfu.settings import load_settings  # noqa: E402

Send = Callable[[str, dict], Awaitable[None]]


class NaiveRouter:
    """The baseline: MediaRelay decodes each publisher once, each subscriber re-encodes."""

    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.sends: dict[str, Send] = {}
        self.pcs: list[RTCPeerConnection] = []
        self.answers: dict[str, asyncio.Future[RTCSessionDescription]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def join(self, user_id: str, send: Send) -> None:
        self.sends[user_id] = send

    async def handle(self, user_id: str, event: str, payload: dict) -> dict:
        if event == "sfu-publish":
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            self.pcs.append(pc)

            @pc.on("track")
            def on_track(track: Any) -> None:
                for other in self.sends:
                    if other != user_id:
                        task = asyncio.ensure_future(self._subscribe(other, user_id, track))
                        self.tasks.add(task)

            await pc.setRemoteDescription(RTCSessionDescription(**payload["description"]))
            await pc.setLocalDescription(await pc.createAnswer())
            return {"ok": True, "description": {"type": "answer", "sdp": pc.localDescription.sdp}}
        if event == "sfu-subscribe-answer":
            self.answers[user_id].set_result(RTCSessionDescription(**payload["description"]))
            return {"ok": True}
        return {"ok": False, "error": "unknown_event", "message": event}

    async def _subscribe(self, user_id: str, publisher: str, track: Any) -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)
        transceiver = pc.addTransceiver(self.relay.subscribe(track), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        self.answers[user_id] = asyncio.get_running_loop().create_future()
        entry = {
            "mid": transceiver.mid,
            "userId": publisher,
            "source": "camera",
            "kind": "video",
            "trackId": f"{publisher}-camera",
            "streamId": publisher,
            "active": True,
        }
        await self.sends[user_id](
            "sfu-subscribe-offer",
            {
                "session": 1,
                "description": {"type": "offer", "sdp": pc.localDescription.sdp},
                "tracks": [entry],
            },
        )
        await pc.setRemoteDescription(await self.answers[user_id])

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()


# --- the server process: a router behind line-delimited JSON over TCP ------------------


async def serve(mode: str, port: int) -> None:
    settings = load_settings()
    router: Any = Router(settings, "bench") if mode == "sfu" else NaiveRouter()
    done = asyncio.Event()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def push(user_id: str, event: str, payload: dict) -> None:
            writer.write(json.dumps({"push": user_id, "event": event, "payload": payload}).encode())
            writer.write(b"\n")
            await writer.drain()

        async def answer(message: dict) -> None:
            if message["op"] == "join":
                user = message["user"]
                await router.join(user, lambda e, p: push(user, e, p))
                reply: Any = None
            elif message["op"] == "handle":
                reply = await router.handle(message["user"], message["event"], message["payload"])
            elif message["op"] == "cpu":
                reply = {"cpu": time.process_time(), "wall": time.monotonic()}
            else:
                done.set()
                reply = None
            writer.write(json.dumps({"id": message["id"], "reply": reply}).encode() + b"\n")
            await writer.drain()

        try:
            while line := await reader.readline():
                asyncio.ensure_future(answer(json.loads(line)))
        except (asyncio.CancelledError, ConnectionError):
            pass  # the benchmark is over

    server = await asyncio.start_server(client, "127.0.0.1", port)
    async with server:
        await done.wait()
    await router.close()


class RemoteRouter:
    """The client side of :func:`serve`: the Router interface over the socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.sends: dict[str, Send] = {}
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.ids = iter(range(1, 1 << 30))
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while line := await self.reader.readline():
            message = json.loads(line)
            if "push" in message:
                await self.sends[message["push"]](message["event"], message["payload"])
            else:
                self.pending.pop(message["id"]).set_result(message["reply"])

    async def call(self, **message: Any) -> Any:
        message["id"] = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[message["id"]] = future
        self.writer.write(json.dumps(message).encode() + b"\n")
        await self.writer.drain()
        return await future

    async def join(self, user_id: str, send: Send) -> None:
        self.sends[user_id] = send
        await self.call(op="join", user=user_id)

    async def handle(self, user_id: str, event: str, payload: dict) -> dict:
        return await self.call(op="handle", user=user_id, event=event, payload=payload)


async def measure(
    mode: str, subscribers: int, seconds: float, noise: int, size: str
) -> dict[str, Any]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    width, height = (int(v) for v in size.split("x"))
    server = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", mode, "--port", str(port)
    )
    try:
        for _ in range(100):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        remote = RemoteRouter(reader, writer)
        subs = [await SfuPeer(remote, f"sub{i}").join() for i in range(subscribers)]
        publisher = await SfuPeer(remote, "pub").join()
        ack = await publisher.publish(
            {"camera": NumberedVideoTrack(noise=noise, width=width, height=height)}
        )
        assert ack["ok"], ack
        for sub in subs:
            await sub.wait_video("pub", 30, timeout=60)
        await asyncio.sleep(2)  # past the start-up keyframes
        counts = [len(s.video_from("pub").numbers) for s in subs]
        sender = publisher.publish_sender("video")
        sent_before = await bytes_sent(sender)
        start = await remote.call(op="cpu")
        await asyncio.sleep(seconds)
        end = await remote.call(op="cpu")
        kbps = (await bytes_sent(sender) - sent_before) * 8 / seconds / 1000
        fps = [
            (len(s.video_from("pub").numbers) - c) / seconds
            for s, c in zip(subs, counts, strict=True)
        ]
        clean = all(s.video_from("pub").unclean == 0 for s in subs)
        await remote.call(op="stop")
        for peer in [*subs, publisher]:
            await peer.close()
        remote.task.cancel()
        writer.close()
        return {
            "cpu_percent": 100 * (end["cpu"] - start["cpu"]) / (end["wall"] - start["wall"]),
            "min_fps": min(fps),
            "clean": clean,
            "publisher_kbps": kbps,
        }
    finally:
        try:
            await asyncio.wait_for(server.wait(), 10)
        except TimeoutError:
            server.kill()
            await server.wait()


async def bytes_sent(sender: Any) -> int:
    stats = await sender.getStats()
    return sum(s.bytesSent for s in stats.values() if s.type == "outbound-rtp")


def inside_private_netns() -> bool:
    names = {name for _, name in socket.if_nameindex()}
    return names <= {"lo", "sfu0", "sfu1"} and {"sfu0", "sfu1"} <= names


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--modes", nargs="+", default=["sfu", "naive"])
    parser.add_argument("--size", default="640x480", help="video width x height")
    parser.add_argument(
        "--noise", type=int, default=24, help="chroma noise amplitude (0..128): the bitrate"
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        await serve(args.serve, args.port)
        return
    if not inside_private_netns() and os.environ.get("SFU_BENCH_ANY_NETWORK") != "1":
        sys.exit("run inside scripts/netns-run (WebRTC traffic must stay in a private namespace)")
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for k in args.subscribers:
        for mode in args.modes:
            results[(mode, k)] = result = await measure(
                mode, k, args.seconds, args.noise, args.size
            )
            print(
                f"{mode:5} K={k}: server {result['cpu_percent']:5.1f}% of a core, "
                f"subscribers >= {result['min_fps']:.1f} fps, clean={result['clean']}, "
                f"publisher {result['publisher_kbps']:.0f} kbps",
                flush=True,
            )
    if set(args.modes) == {"sfu", "naive"}:
        print("\n| K | forwarding | MediaRelay | ratio |\n|---|---|---|---|")
        for k in args.subscribers:
            sfu, naive = results[("sfu", k)], results[("naive", k)]
            print(
                f"| {k} | {sfu['cpu_percent']:.1f}% | {naive['cpu_percent']:.1f}% "
                f"| {sfu['cpu_percent'] / naive['cpu_percent']:.3f} |"
            )


if __name__ == "__main__":
    asyncio.run(main())
