"""Server CPU of the SFU's encoded forwarding vs decoding once and re-encoding per subscriber.

One publisher (synthetic 640x480 VP8 at 30 fps) and K subscribers, in this process; the
server in a child process, so its CPU time is measured alone. Modes: ``sfu`` is the router
of sfu/media; ``naive`` is aiortc's MediaRelay (one decode, one encode per subscriber);
``direct`` is the publisher connected straight to one subscriber, no server (the latency
baseline); ``sfu-rec`` is ``sfu`` while the room records (a frame sink on the router, as
the recorder is). Must run inside the private network namespace:

    scripts/netns-run .venv/bin/python benchmarks/forwarding.py --subscribers 1 4 8 --seconds 10

Per mode and K it reports the server's CPU (% of one core), CPU per forwarded stream, CPU
per delivered frame (so a saturated server that delivers fewer frames is not flattered),
RTP packets delivered per server CPU second, the capture-to-decode latency (minus the
``direct`` baseline: the added forwarding latency), and the time to first frame, both for
the subscribers present when the publisher starts and for one that joins late (keyframe
request and gating).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.contrib.media import MediaRelay  # noqa: E402

from sfu.loadtest import FPS, NumberedVideoTrack, Received, SfuPeer  # noqa: E402
from sfu.media.aiortc.receiver import ReceiverTap  # noqa: E402
from sfu.media.frames import EncodedFrame  # noqa: E402
from sfu.media.router import Router  # noqa: E402
from sfu.media.rtp.assembler import FrameAssembler  # noqa: E402
from sfu.settings import load_settings  # noqa: E402

Send = Callable[[str, dict], Awaitable[None]]


class TimedTrack(NumberedVideoTrack):
    """The numbered video, remembering when each frame was actually made (event-loop time).

    On a busy machine the publisher falls behind its schedule; latency counts from when a
    frame was really captured, not from when it was due.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.made: dict[int, float] = {}

    async def recv(self) -> Any:
        frame = await super().recv()
        self.made[self.number - 1] = asyncio.get_running_loop().time()
        return frame


class CountingPeer(SfuPeer):
    """A subscriber that reassembles frames but does not decode them (the server cannot
    tell): eight decoding subscribers and the publisher's encoder would saturate this side
    of a 2-core machine and starve the publisher. Frame numbers come from RTP timestamps.
    """

    def _on_track(self, track: Any) -> None:
        received = self._received_for(track)
        loop = asyncio.get_running_loop()

        receiver = next(r for r in self.subscribe_pc.getReceivers() if r.track is track)
        tap: ReceiverTap
        assembler: list[FrameAssembler] = []  # made at the first packet (its codec)

        def on_frame(frame: EncodedFrame) -> None:
            received.frames += 1
            if received.first_at is None:
                received.first_at = loop.time()
            if frame.kind == "video":
                received.numbers.append(frame.timestamp // (frame.clock_rate // FPS))
            self.changed.set()

        def on_packet(packet: Any, starts_keyframe: bool) -> None:
            # The same assembler as the server's recording observer (sfu/media/observer.py).
            if not assembler:
                codec = tap.codec(packet.payload_type)
                assert codec is not None
                assembler.append(FrameAssembler(codec.name, track.kind, codec.clockRate))
            frames = assembler[0].push(
                packet.sequence_number, packet.timestamp, bool(packet.marker), packet.payload
            )
            for frame in frames:
                on_frame(frame)

        # Installed synchronously, before aiortc starts the receiver (as the server does).
        tap = ReceiverTap(receiver, track.kind, 0.3, on_packet)


class NaiveRouter:
    """The baseline: MediaRelay decodes each publisher once, each subscriber re-encodes."""

    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.sends: dict[str, Send] = {}
        self.pcs: list[RTCPeerConnection] = []
        self.answers: dict[str, asyncio.Future[RTCSessionDescription]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.tracks: list[tuple[str, Any]] = []  # (publisher, its incoming track)

    async def join(self, user_id: str, send: Send) -> None:
        self.sends[user_id] = send
        for publisher, track in self.tracks:  # a late joiner gets what is already published
            self._spawn(self._subscribe(user_id, publisher, track))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def handle(self, user_id: str, event: str, payload: dict) -> dict:
        if event == "sfu-publish":
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            self.pcs.append(pc)

            @pc.on("track")
            def on_track(track: Any) -> None:
                self.tracks.append((user_id, track))
                for other in self.sends:
                    if other != user_id:
                        self._spawn(self._subscribe(other, user_id, track))

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
        entry = _camera_entry(transceiver.mid, publisher)
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


class DirectRouter:
    """No server: a subscriber's offer is answered by the publisher's own peer connection.

    Only for ``direct`` (K = 1): the publisher's offer is parked until the subscriber's
    connection answers it, so the publisher sends straight to the subscriber.
    """

    def __init__(self) -> None:
        self.sends: dict[str, Send] = {}
        self.answer: asyncio.Future[dict] | None = None

    async def join(self, user_id: str, send: Send) -> None:
        self.sends[user_id] = send

    async def handle(self, user_id: str, event: str, payload: dict) -> dict:
        if event == "sfu-publish":
            loop = asyncio.get_running_loop()
            self.answer = loop.create_future()
            sub = next(u for u in self.sends if u != user_id)
            # The publisher's offer is sendonly; the subscriber answers it (recvonly).
            await self.sends[sub](
                "sfu-subscribe-offer",
                {
                    "session": 1,
                    "description": payload["description"],
                    "tracks": [_direct_entry(payload, user_id)],
                },
            )
            return {"ok": True, "description": await self.answer}
        if event == "sfu-subscribe-answer":
            assert self.answer is not None
            self.answer.set_result(payload["description"])
            return {"ok": True}
        return {"ok": False, "error": "unknown_event", "message": event}


def _direct_entry(payload: dict, publisher: str) -> dict:
    mid = next(
        line.split(":", 1)[1].strip()
        for line in payload["description"]["sdp"].splitlines()
        if line.startswith("a=mid:")
    )
    return _camera_entry(mid, publisher)


def _camera_entry(mid: str | None, publisher: str) -> dict:
    """A subscribe offer's track entry (docs/sfu.md) for a publisher's camera."""
    return {
        "mid": mid,
        "userId": publisher,
        "source": "camera",
        "kind": "video",
        "trackId": f"{publisher}-camera",
        "streamId": publisher,
        "active": True,
    }


# --- the server process: a router behind line-delimited JSON over TCP ------------------


async def serve(mode: str, port: int) -> None:
    settings = load_settings()
    router: Any = Router(settings, "bench") if mode in ("sfu", "sfu-rec") else NaiveRouter()
    if mode == "sfu-rec":
        # What a recording adds to forwarding: the router's frame observer (the recorder's
        # own decoding and encoding run in its worker thread and are measured apart, in
        # benchmarks/recording.py).
        frames = [0]

        def sink(user_id: str, source: str, kind: str, frame: EncodedFrame) -> None:
            frames[0] += 1

        router.add_sink(sink)
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
                times = os.times()
                reply = {
                    "cpu": time.process_time(),
                    "sys": times.system,
                    "wall": time.monotonic(),
                    "pid": os.getpid(),
                }
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


async def packets_received(peer: SfuPeer) -> int:
    """RTP packets (video) the peer's subscribe connection has received so far."""
    if peer.subscribe_pc is None:
        return 0
    total = 0
    for receiver in peer.subscribe_pc.getReceivers():
        if receiver.track is None or receiver.track.kind != "video":
            continue
        stats = await receiver.getStats()
        total += sum(s.packetsReceived for s in stats.values() if s.type == "inbound-rtp")
    return total


def latencies_ms(received: Received, start: int, track: TimedTrack) -> list[float]:
    """Capture (when the publisher made the frame) to decoded, for frames from ``start``."""
    times = getattr(received, "times", None)  # sfu/loadtest.py records decode times
    if not times:
        return []
    return [
        (at - due) * 1000
        for number, at in zip(received.numbers[start:], times[start:], strict=True)
        if (due := track.made.get(number)) is not None
    ]


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(
    mode: str,
    subscribers: int,
    seconds: float,
    noise: int,
    size: str,
    profile: float,
    decoders: int,
) -> dict[str, Any]:
    load = os.getloadavg()[0]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    width, height = (int(v) for v in size.split("x"))
    loop = asyncio.get_running_loop()
    server = None
    if mode != "direct":
        server = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", mode, "--port", str(port)
        )
    try:
        remote: Any
        if server is not None:
            for _ in range(100):
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            remote = RemoteRouter(reader, writer)
        else:
            remote = DirectRouter()
            subscribers = 1
        subs = [
            await (SfuPeer if i < decoders else CountingPeer)(remote, f"sub{i}").join()
            for i in range(subscribers)
        ]
        publisher = await SfuPeer(remote, "pub").join()
        track = TimedTrack(noise=noise, width=width, height=height)
        ack = await publisher.publish({"camera": track})
        assert ack["ok"], ack
        acked = loop.time()
        for sub in subs:
            await sub.wait_video("pub", 30, timeout=60)
        first_frame = [
            r.first_at - acked for s in subs if (r := s.video_from("pub")) and r.first_at
        ]
        await asyncio.sleep(2)  # past the start-up keyframes
        counts = [len(s.video_from("pub").numbers) for s in subs]
        packets_before = sum([await packets_received(s) for s in subs])
        sender = publisher.publish_sender("video")
        sent_before = await bytes_sent(sender)
        made_before = track.number
        start = await remote.call(op="cpu") if server is not None else None
        profiler = None
        if profile and start is not None:
            profiler = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "py-spy"),
                *("record", "--pid", str(start["pid"]), "--duration", str(int(profile))),
                *("--format", "raw", "--output", f"/tmp/forwarding-{mode}-{subscribers}.txt"),
                *("--rate", "200", "--nonblocking"),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        wall_start = loop.time()
        await asyncio.sleep(seconds)
        end = await remote.call(op="cpu") if server is not None else None
        window = loop.time() - wall_start
        kbps = (await bytes_sent(sender) - sent_before) * 8 / window / 1000
        made = track.number - made_before
        packets = sum([await packets_received(s) for s in subs]) - packets_before
        delivered = [
            len(s.video_from("pub").numbers) - c for s, c in zip(subs, counts, strict=True)
        ]
        latencies = [
            value
            for s, c in zip(subs, counts, strict=True)
            for value in latencies_ms(s.video_from("pub"), c, track)
        ]
        clean = all(s.video_from("pub").unclean == 0 for s in subs[:decoders])

        # A late joiner: join to first decoded frame (a keyframe requested and gated).
        late_first = None
        late = None
        if server is not None:
            late = await SfuPeer(remote, "late").join()
            joined = loop.time()
            try:
                received = await late.wait_video("pub", 1, timeout=20)
                late_first = (received.first_at or loop.time()) - joined
            except TimeoutError:
                pass
        if profiler is not None:
            await profiler.wait()
        if server is not None:
            await remote.call(op="stop")
        for peer in [*subs, *([late] if late else []), publisher]:
            await peer.close()
        if server is not None:
            remote.task.cancel()
            writer.close()
        result: dict[str, Any] = {
            "mode": mode,
            "k": subscribers,
            "load": load,
            "window": window,
            "min_fps": min(delivered, default=0) / window,
            "frames_made": made,
            "frames_delivered": sum(delivered),
            "delivered": sum(delivered) / (made * subscribers) if made and subscribers else 0.0,
            "packets": packets,
            "clean": clean,
            "publisher_kbps": kbps,
            "latency_p50": quantile(latencies, 0.5),
            "latency_p95": quantile(latencies, 0.95),
            "first_frame": max(first_frame) if first_frame else None,
            "late_first_frame": late_first,
        }
        if start is not None and end is not None:
            cpu = end["cpu"] - start["cpu"]
            result["cpu_percent"] = 100 * cpu / (end["wall"] - start["wall"])
            # K = 0: a publisher that nobody receives (the fixed cost).
            result["cpu_per_stream"] = result["cpu_percent"] / subscribers if subscribers else None
            # Per frame actually delivered: a saturated server must not look cheap.
            result["cpu_ms_per_frame"] = 1000 * cpu / max(1, sum(delivered))
            # At 30 fps for every subscriber, by the measured cost of a delivered frame.
            result["cpu_percent_normalised"] = (
                result["cpu_ms_per_frame"] * FPS * subscribers / 10
                if subscribers
                else result["cpu_percent"]
            )
            result["packets_per_core_second"] = packets / cpu if cpu else None
            # Kernel time: on loopback/veth the receiver's network stack runs in the sender's
            # sendto(), so this share is higher here than with a real network card.
            result["kernel_share"] = (end["sys"] - start["sys"]) / cpu if cpu else None
        return result
    finally:
        if server is not None:
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


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def line(r: dict[str, Any]) -> str:
    text = (
        f"{r['mode']:6} K={r['k']}: load {r['load']:.2f}, "
        f"subscribers >= {r['min_fps']:.1f} fps ({100 * r['delivered']:.0f}% of frames), "
        f"clean={r['clean']}, publisher {r['publisher_kbps']:.0f} kbps, "
        f"latency p50/p95 {fmt(r['latency_p50'], '.0f')}/{fmt(r['latency_p95'], '.0f')} ms, "
        f"first frame {fmt(r['first_frame'], '.2f')} s, "
        f"late joiner {fmt(r['late_first_frame'], '.2f')} s"
    )
    if "cpu_percent" in r:
        text += (
            f"\n        server {r['cpu_percent']:.1f}% of a core "
            f"({r['cpu_percent_normalised']:.1f}% at full frame rate), "
            f"{fmt(r['cpu_per_stream'], '.2f')}% per stream, "
            f"{r['cpu_ms_per_frame']:.3f} ms CPU per frame, "
            f"{fmt(r['packets_per_core_second'], '.0f')} packets per core-second, "
            f"{fmt(100 * r['kernel_share'] if r.get('kernel_share') is not None else None, '.0f')}"
            "% in the kernel"
        )
    return text


def summary(results: list[dict[str, Any]]) -> str:
    """A markdown table: medians over repeats, with the range, and the ratios."""
    rows = [
        "| K | mode | runs | server CPU % (range) | normalised CPU % | per stream % "
        "| ms CPU/frame | packets/core-s | latency p50 (added) ms | first frame s "
        "| late joiner s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    direct = [r["latency_p50"] for r in results if r["mode"] == "direct" and r["latency_p50"]]
    base = statistics.median(direct) if direct else None
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["k"], r["mode"]), []).append(r)

    def med(rs: list[dict[str, Any]], key: str) -> float | None:
        values = [r[key] for r in rs if r.get(key) is not None]
        return statistics.median(values) if values else None

    for (k, mode), rs in sorted(groups.items()):
        cpu = [r["cpu_percent"] for r in rs if "cpu_percent" in r]
        spread = f"{statistics.median(cpu):.1f} ({min(cpu):.1f}-{max(cpu):.1f})" if cpu else "-"
        latency = med(rs, "latency_p50")
        added = f" ({latency - base:+.0f})" if latency is not None and base is not None else ""
        rows.append(
            f"| {k} | {mode} | {len(rs)} | {spread} "
            f"| {fmt(med(rs, 'cpu_percent_normalised'), '.1f')} "
            f"| {fmt(med(rs, 'cpu_per_stream'), '.2f')} "
            f"| {fmt(med(rs, 'cpu_ms_per_frame'), '.3f')} "
            f"| {fmt(med(rs, 'packets_per_core_second'), '.0f')} | {fmt(latency, '.0f')}{added} "
            f"| {fmt(med(rs, 'first_frame'), '.2f')} | {fmt(med(rs, 'late_first_frame'), '.2f')} |"
        )
    ks = sorted({k for k, mode in groups if mode == "sfu" and (k, "naive") in groups})
    if ks:
        rows += [
            "",
            "| K | forwarding / MediaRelay CPU | per delivered frame | MediaRelay / forwarding |",
            "|---|---|---|---|",
        ]
        for k in ks:
            sfu, naive = groups[(k, "sfu")], groups[(k, "naive")]
            ratio = med(sfu, "cpu_percent") / med(naive, "cpu_percent")  # type: ignore[operator]
            per_frame = med(sfu, "cpu_ms_per_frame") / med(naive, "cpu_ms_per_frame")  # type: ignore[operator]
            rows.append(f"| {k} | {ratio:.3f} | {per_frame:.3f} | {1 / per_frame:.1f}x |")
    return "\n".join(rows)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--modes", nargs="+", default=["direct", "sfu", "naive"])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each mode and K")
    parser.add_argument("--size", default="640x480", help="video width x height")
    parser.add_argument(
        "--noise", type=int, default=24, help="chroma noise amplitude (0..128): the bitrate"
    )
    parser.add_argument(
        "--decoders",
        type=int,
        default=1,
        help="subscribers that decode (content check, latency); the others only reassemble",
    )
    parser.add_argument("--json", help="also write every result to this file")
    parser.add_argument(
        "--profile",
        type=float,
        default=0,
        help="py-spy the server for this many seconds of the window (/tmp/forwarding-MODE-K.txt)",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        await serve(args.serve, args.port)
        return
    if not inside_private_netns() and os.environ.get("SFU_BENCH_ANY_NETWORK") != "1":
        sys.exit("run inside scripts/netns-run (WebRTC traffic must stay in a private namespace)")
    results: list[dict[str, Any]] = []
    plan = [("direct", 1)] if "direct" in args.modes else []
    plan += [(m, k) for k in args.subscribers for m in args.modes if m != "direct"]
    for _ in range(args.repeat):
        for mode, k in plan:
            result = await measure(
                mode, k, args.seconds, args.noise, args.size, args.profile, args.decoders
            )
            results.append(result)
            print(line(result), flush=True)
    print()
    print(summary(results))
    if args.json:
        with open(args.json, "w") as out:  # noqa: ASYNC230 - once, at the end
            json.dump(results, out, indent=1)


if __name__ == "__main__":
    asyncio.run(main())
