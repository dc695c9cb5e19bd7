"""Server CPU of forwarding with simulcast on and off (#17), in one run.

A real headless Chromium publishes its camera through the app (aiortc cannot send
simulcast): with ``sfu.simulcast`` on, the 640x480 camera goes out as two VP8 encodings
(``h`` 320x240, ``f`` 640x480; client/src/services/simulcast.ts); off, the server answers
without simulcast and the app sends one encoding. K aiortc subscribers (sfu/loadtest.py's
``SfuPeer`` over Socket.IO, in this process) receive it through the server's own
``ReceiverTap`` (counted, not decoded). The server runs alone in its own process (``sfu
serve``), so its CPU (/proc/PID/stat utime + stime, all threads) over the window is the
forwarding's. Each scenario gets a fresh server and a fresh browser; the two modes
alternate for every K (their order flips each repeat), with otherwise the same settings:

    scripts/netns-run .venv/bin/python benchmarks/simulcast.py \\
        --subscribers 1 4 8 --seconds 10 --repeat 3

Per mode and K: the server's CPU (% of one core, median of the repeats), what each
subscriber received (RTP payload kbit/s, frames/s, the layer it is on and the width of its
last keyframe: in "on" every subscriber should be on ``f``, like for like with "off"), and
what the publisher sent (its outbound-rtp encodings, from Chromium, and the producer's
layers as the server sees them, admin API; "on" must show two, "off" one). Then per mode
the cost of one more subscriber, (cpu(K_max) - cpu(K_min)) / (K_max - K_min), and the
ratios on/off. The publisher's and this process's CPU are reported too (a saturated
machine shows). Camera only (``--audio`` adds the microphone, in both modes); the
publisher's video sender keeps its resolution under a low estimate (``maintain-resolution``,
both modes), and each scenario warms up until neither mode is held back (see measure()).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.signaling import cpu_seconds, free_port  # noqa: E402
from sfu.loadtest import SfuPeer, SocketIORouter  # noqa: E402
from sfu.media.aiortc.receiver import ReceiverTap  # noqa: E402
from sfu.media.aiortc.transport import receive_directly  # noqa: E402
from sfu.media.rtp import vp8  # noqa: E402
from sfu.media.rtp.codecs import vp8_size  # noqa: E402
from sfu.settings import SfuSettings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("SFU_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
ADMIN_TOKEN = "bench-admin-token"
MODES = ("on", "off")
MAX_VIDEO_BPS = SfuSettings().max_video_bitrate_kbps * 1000  # the default (not changed here)
STEADY = 4.0  # seconds the warm-up's condition must hold

# Chromium's peer connections, for their statistics (as tests/e2e/hosts.py keeps them).
KEEP_PEER_CONNECTIONS = """(() => {
  const Original = window.RTCPeerConnection;
  window.__peerConnections = [];
  window.RTCPeerConnection = class extends Original {
    constructor(...args) { super(...args); window.__peerConnections.push(this); }
  };
})();"""

# A low estimate must not shrink the one encoding of "off" (Chromium's default "balanced"
# takes a minute or more to come back to 640x480 once the estimate is up again): the
# subscribers would get a smaller picture than in "on", where each layer keeps its size.
MAINTAIN_RESOLUTION = """(() => {
  const Original = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Original {
    constructor(...args) {
      super(...args);
      this.addEventListener('connectionstatechange', () => {
        if (this.connectionState !== 'connected') return;
        for (const sender of this.getSenders()) {
          if (!sender.track || sender.track.kind !== 'video') continue;
          const p = sender.getParameters();
          if (p.degradationPreference === 'maintain-resolution') continue;
          p.degradationPreference = 'maintain-resolution';
          sender.setParameters(p).catch((e) => console.warn('degradationPreference', e));
        }
      });
    }
  };
})();"""

# Camera only: the app asks for camera and microphone together; the microphone is dropped.
NO_MICROPHONE = """(() => {
  const md = navigator.mediaDevices;
  const original = md.getUserMedia.bind(md);
  md.getUserMedia = (c) => original({ ...(c || {}), audio: false });
})();"""

# The publisher's outbound video, one entry per encoding (a simulcast layer has its rid).
JS_OUTBOUND_VIDEO = """async () => {
  const out = [];
  for (const pc of window.__peerConnections || []) {
    if (pc.connectionState === 'closed') continue;
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video') out.push({
        rid: s.rid || null, width: s.frameWidth || 0, height: s.frameHeight || 0,
        fps: s.framesPerSecond || 0, bytes: s.bytesSent || 0, frames: s.framesEncoded || 0,
        limitation: s.qualityLimitationReason || null,
      });
    });
  }
  out.sort((a, b) => a.width - b.width);
  return out;
}"""


# -- the camera -----------------------------------------------------------------------------
def write_clip(path: Path, width: int, height: int, fps: int, seconds: float, noise: int) -> None:
    """A 4:2:0 y4m clip Chromium's fake camera loops: a random texture drifting across the
    picture (motion the encoder can predict) plus fresh noise per frame (detail it cannot),
    so each layer has a real bitrate, as a camera's picture has."""
    rng = np.random.default_rng(17)
    texture = rng.integers(40, 216, (2 * height, 2 * width), dtype=np.uint8)
    # Blocks of 8x8 pixels: detail at the scale a camera has, not pixel noise only.
    texture = np.kron(texture[::8, ::8], np.ones((8, 8), np.uint8))
    chroma = np.full((height // 2, width // 2), 128, np.uint8).tobytes()
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(int(seconds * fps)):
            dx, dy = (3 * i) % width, (2 * i) % height
            luma = texture[dy : dy + height, dx : dx + width].astype(np.int16)
            if noise:
                luma += rng.integers(-noise, noise + 1, luma.shape, dtype=np.int16)
            f.write(b"FRAME\n" + np.clip(luma, 0, 255).astype(np.uint8).tobytes())
            f.write(chroma + chroma)


# -- the server -------------------------------------------------------------------------------
class Server:
    """``sfu serve`` on a free port of 127.0.0.1 in its own process, run from an empty folder
    (no sfu.toml), defaults only (no ``SFU_*`` of the caller's) plus ``settings``."""

    def __init__(self, workdir: Path, settings: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SFU_")}
        env |= {
            "SFU_NETNS": os.environ.get("SFU_NETNS", ""),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "SFU_AUTH__ADMIN_TOKEN": ADMIN_TOKEN,
            "SFU_LIMITS__MAX_SOCKETS_PER_ADDRESS": "0",  # every subscriber comes from 127.0.0.1
            "SFU_SERVER__LOG_LEVEL": "WARNING",
            "SFU_SERVER__SHUTDOWN_GRACE_SECONDS": "0",
            **settings,
        }
        cmd = [
            sys.executable,
            "-m",
            "sfu",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log.read_text()[-2000:]}")
            try:
                if self.request("GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not become healthy")
            time.sleep(0.1)

    def request(self, method: str, path: str, body: Any = None, admin: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if admin:
            req.add_header("Authorization", f"Bearer {ADMIN_TOKEN}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def media(self, room: str) -> dict[str, Any]:
        """The room's router counters (admin view of GET /api/rooms/{id})."""
        status, body = self.request("GET", f"/api/rooms/{room}", admin=True)
        assert status == 200, (status, body)
        return body["media"]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def tree_cpu(root: int, exclude: set[int]) -> float:
    """CPU seconds of the living descendants of ``root`` (not ``exclude`` or below them)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0.0, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid in exclude:
            continue
        try:
            total += cpu_seconds(pid)
        except (OSError, IndexError, ValueError):
            continue
        todo += children.get(pid, [])
    return total


# -- the subscribers ----------------------------------------------------------------------------
class CountingPeer(SfuPeer):
    """A subscriber that counts what arrives, through the server's own receive path
    (``ReceiverTap`` and ``receive_directly``): nothing reassembled, nothing decoded, so K
    of them leave the 2-core machine to the server and the publisher."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.taps: list[ReceiverTap] = []
        self.bytes = 0  # RTP payload of the video, retransmissions counted once
        self.packets = 0
        self.frames = 0  # packets with the marker bit: pictures
        self.keyframe_size: tuple[int, int] | None = None  # of the last keyframe
        self._seen: set[int] = set()

    def reset(self) -> None:
        self.bytes = self.packets = self.frames = 0
        self._seen.clear()

    def _on_track(self, track: Any) -> None:
        pc = self.subscribe_pc
        assert pc is not None
        if track.kind != "video":
            return
        receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)

        def on_packet(packet: Any, starts_keyframe: bool) -> None:
            seq = packet.sequence_number
            if seq in self._seen:
                return
            self._seen.add(seq)
            self.packets += 1
            self.bytes += len(packet.payload)
            self.frames += bool(packet.marker)
            if starts_keyframe:
                d = vp8.parse(packet.payload)
                if d is not None and d.starts_picture:
                    self.keyframe_size = vp8_size(packet.payload[d.size :]) or self.keyframe_size

        # Installed synchronously, before aiortc starts the receiver (as the server does).
        self.taps.append(ReceiverTap(receiver, "video", 0.3, on_packet))
        receive_directly(pc)  # idempotent; takes effect once DTLS is connected


def span_kbps(history: list[tuple[float, int]], now: float, ago: float) -> float | None:
    """kbit/s over the STEADY seconds that ended ``ago`` seconds before ``now``."""
    end = [(t, b) for t, b in history if t <= now - ago]
    start = [(t, b) for t, b in history if t <= now - ago - STEADY]
    if not end or not start or end[-1][0] <= start[-1][0]:
        return None
    (t0, b0), (t1, b1) = start[-1], end[-1]
    return (b1 - b0) * 8 / (t1 - t0) / 1000


# -- one scenario -----------------------------------------------------------------------------
async def publisher_stats(page: Any) -> list[dict[str, Any]]:
    return list(await page.evaluate(JS_OUTBOUND_VIDEO))


def video_producer(media: dict[str, Any]) -> dict[str, Any] | None:
    return next((p for p in media["producers"] if p["kind"] == "video"), None)


def layer_names(producer: dict[str, Any] | None) -> list[str]:
    return [x["rid"] for x in producer["layers"]] if producer else []


async def measure(
    pw: Any, mode: str, k: int, clip: Path, workdir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    load = os.getloadavg()[0]
    loop = asyncio.get_running_loop()
    server = Server(workdir, {"SFU_SFU__SIMULCAST": "true" if mode == "on" else "false"})
    subs: list[CountingPeer] = []
    routers: list[SocketIORouter] = []
    browser = None
    try:
        status, body = server.request("POST", "/api/rooms", {"mode": "sfu"})
        assert status == 201, (status, body)
        room = body["roomId"]
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={clip}",
                "--autoplay-policy=no-user-gesture-required",
                "--disable-gpu",
                "--mute-audio",
            ],
        )
        context = await browser.new_context(
            permissions=["camera", "microphone"], viewport={"width": 960, "height": 640}
        )
        await context.add_init_script(script=MAINTAIN_RESOLUTION)
        await context.add_init_script(script=KEEP_PEER_CONNECTIONS)
        if not args.audio:
            await context.add_init_script(script=NO_MICROPHONE)
        page = await context.new_page()
        await page.goto(f"{server.url}/room/{room}?name=Publisher&raw_audio=1")
        await page.wait_for_selector(
            '[data-testid=room][data-join-status="joined"]', timeout=30_000
        )

        # Warm-up, in two steps, each until its condition held for STEADY seconds, so that
        # both modes forward a full 640x480 picture at the rate it settles at:
        # 1. The publisher alone, until its encodings are at their full sizes, not held
        #    back ("bandwidth"), and its top one's rate no longer climbing: Chromium starts
        #    from a 300 kbit/s estimate.
        # 2. The K subscribers join (as into a meeting under way), until every one receives,
        #    the rate it gets no longer climbing, the publisher still at full size; in "on"
        #    each on the top layer, in "off" each one's REMB up to sfu.max_video_bitrate_kbps
        #    (a new subscriber's starts from what it got in its first 3 s, often lower
        #    than what is sent: about 30 s).
        started = loop.time()
        want = [320, 640] if mode == "on" else [640]
        settled = True
        history: list[tuple[float, int]] = []  # (when, bytes sent of the top encoding)
        alone = 0.0  # kbit/s of the top encoding at the end of step 1
        for step in ("publisher", "subscribers"):
            if step == "subscribers":
                for i in range(k):
                    router = SocketIORouter(server.url, room, timeout=30)
                    routers.append(router)
                    peer = CountingPeer(router, f"sub{i}")
                    subs.append(peer)
                    await peer.join()
            begun = loop.time()
            least = args.warmup if step == "publisher" else STEADY
            ready_at: float | None = None
            while True:
                media = await asyncio.to_thread(server.media, room)
                sent = await publisher_stats(page)
                producer = video_producer(media)
                consumers = [c for c in media["consumerList"] if c["kind"] == "video"]
                top = len(producer["layers"]) - 1 if producer else -1
                ready = [e["width"] for e in sent] == want
                ready = ready and all(e["limitation"] in (None, "none") for e in sent)
                now = loop.time()
                history.append((now, sent[-1]["bytes"] if sent else 0))
                kbps, earlier = span_kbps(history, now, 0), span_kbps(history, now, STEADY)
                if step == "publisher":
                    # Its top encoding's rate no longer climbing (last 4 s against the 4 before).
                    steady = kbps is not None and earlier is not None and 0 < kbps <= 1.1 * earlier
                    ready = ready and steady
                    alone = kbps or 0.0
                else:
                    ready = ready and len(consumers) == k and all(s.frames > 0 for s in subs)
                    if top >= 0:
                        ready = ready and all(c.get("layer") == top for c in consumers)
                    else:  # no longer what caps the publisher's estimate
                        ready = ready and all((c["remb"] or 0) >= MAX_VIDEO_BPS for c in consumers)
                    # Every subscriber gets (nearly) what the publisher sent on its own.
                    lowest = min((c["rate"] for c in consumers), default=0) / 1000
                    ready = ready and lowest >= 0.85 * alone
                ready_at = (ready_at or now) if ready else None
                if args.verbose:
                    state = [
                        (c.get("layer"), c["rate"] // 1000, (c["remb"] or 0) // 1000)
                        for c in consumers
                    ]
                    shapes = [(e["width"], e["limitation"]) for e in sent]
                    print(f"    {now - started:5.1f} s: {state} {shapes} {kbps}", flush=True)
                if ready_at is not None and now - ready_at >= STEADY and now - begun >= least:
                    break
                if now - begun > args.settle:
                    settled = False
                    break
                await asyncio.sleep(0.5)
        warmup = loop.time() - started

        # The window: the admin API is asked before the first and after the last CPU reading.
        media_start = await asyncio.to_thread(server.media, room)
        pub_start = await publisher_stats(page)
        for s in subs:
            s.reset()
        me = os.getpid()
        server_cpu0, pub_cpu0 = cpu_seconds(server.proc.pid), tree_cpu(me, {server.proc.pid})
        own_cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(args.seconds)
        server_cpu1, pub_cpu1 = cpu_seconds(server.proc.pid), tree_cpu(me, {server.proc.pid})
        own_cpu1, wall1 = time.process_time(), time.monotonic()
        window = wall1 - wall0
        pub_end = await publisher_stats(page)
        media_end = await asyncio.to_thread(server.media, room)
        received = [(s.bytes * 8 / window / 1000, s.frames / window, s.packets) for s in subs]

        producer = video_producer(media_end)
        rids = layer_names(producer)
        before = {e["rid"]: e for e in pub_start}
        encodings = [
            {
                "rid": e["rid"],
                "size": f"{e['width']}x{e['height']}",
                "kbps": round((e["bytes"] - before.get(e["rid"], e)["bytes"])
                              * 8 / window / 1000),
                "fps": e["fps"],
                "limitation": e["limitation"],
            }
            for e in pub_end
        ]  # fmt: skip
        consumers = [c for c in media_end["consumerList"] if c["kind"] == "video"]
        switches = sum(c["layerSwitches"] for c in consumers) - sum(
            c["layerSwitches"] for c in media_start["consumerList"] if c["kind"] == "video"
        )
        layers_of = [rids[c["layer"]] if c.get("layer") is not None else None for c in consumers]
        sizes = {f"{s.keyframe_size[0]}x{s.keyframe_size[1]}" for s in subs if s.keyframe_size}
        sending = [e for e in encodings if e["kbps"] > 0]
        expected = ["h", "f"] if mode == "on" else []
        verified = rids == expected and len(sending) == (2 if mode == "on" else 1)
        verified = verified and [e["width"] for e in pub_end] == want  # full sizes
        if mode == "on":
            verified = (
                verified
                and all(x == "f" for x in layers_of)
                and all(
                    x["active"]
                    for x in producer["layers"]  # type: ignore[index]
                )
            )
        return {
            "mode": mode,
            "k": k,
            "load": load,
            "window": window,
            "warmup": warmup,
            "settled": settled,
            "server_cpu": 100 * (server_cpu1 - server_cpu0) / window,
            "publisher_cpu": 100 * (pub_cpu1 - pub_cpu0) / window,
            "subscribers_cpu": 100 * (own_cpu1 - own_cpu0) / window,
            "sub_kbps": statistics.median(r[0] for r in received),
            "sub_kbps_min": min(r[0] for r in received),
            "sub_fps_min": min(r[1] for r in received),
            "sub_packets_per_s": sum(r[2] for r in received) / window,
            "producer_layers": [
                {
                    "rid": x["rid"],
                    "size": f"{x['width']}x{x['height']}",
                    "active": x["active"],
                    "kbps": round(x["bitrate"] / 1000),
                }
                for x in (producer["layers"] if producer else [])
            ],  # fmt: skip
            "publisher_encodings": encodings,
            "subscriber_layers": layers_of,
            "subscriber_keyframes": sorted(sizes),
            "layer_switches": switches,
            "verified": verified,
        }
    finally:
        for peer in subs:
            await peer.close()
        for router in routers:
            await router.close()
        if browser is not None:
            await browser.close()
        server.stop()


# -- output -------------------------------------------------------------------------------------
def line(r: dict[str, Any]) -> str:
    sent = ", ".join(
        f"{e['rid'] or '-'} {e['size']} {e['kbps']} kbps {e['fps']:.0f} fps"
        + (f" ({e['limitation']})" if e["limitation"] not in (None, "none") else "")
        for e in r["publisher_encodings"]
    )
    layers = " ".join(
        f"{x['rid']} {x['size']} {x['kbps']} kbps{'' if x['active'] else ' (inactive)'}"
        for x in r["producer_layers"]
    )
    return (
        f"simulcast={r['mode']:3} K={r['k']}: server {r['server_cpu']:.1f}% of a core, "
        f"publisher {r['publisher_cpu']:.0f}%, subscribers {r['subscribers_cpu']:.0f}%, "
        f"load {r['load']:.2f}\n"
        f"    subscribers get {r['sub_kbps']:.0f} kbps (min {r['sub_kbps_min']:.0f}), "
        f">= {r['sub_fps_min']:.1f} fps, layers {r['subscriber_layers'] or '-'}, "
        f"keyframes {r['subscriber_keyframes']}, {r['layer_switches']} switches\n"
        f"    publisher sends [{sent}]; server sees layers [{layers or 'none (no simulcast)'}]"
        f"{'' if r['verified'] else '  *** NOT AS EXPECTED ***'}"
        f"{'' if r['settled'] else '  (did not settle in the warm-up)'}"
    )


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    every: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in results:
        every.setdefault((r["mode"], r["k"]), []).append(r)
    # Medians of the runs that were as expected and settled (all, if none was).
    groups = {
        key: [r for r in rs if r["verified"] and r["settled"]] or rs for key, rs in every.items()
    }

    def med(mode: str, k: int, key: str) -> float:
        return statistics.median(r[key] for r in groups[(mode, k)])

    ks = sorted({k for _, k in groups})
    out: dict[str, Any] = {"rows": [], "slope": {}, "ratio": {}}
    for k in ks:
        for mode in MODES:
            if (mode, k) not in groups:
                continue
            rs = groups[(mode, k)]
            cpus = [r["server_cpu"] for r in rs]
            out["rows"].append(
                {
                    "k": k,
                    "mode": mode,
                    "runs": len(every[(mode, k)]),
                    "counted": len(rs),
                    "server_cpu": statistics.median(cpus),
                    "server_cpu_range": [min(cpus), max(cpus)],
                    "sub_kbps": med(mode, k, "sub_kbps"),
                    "sub_fps_min": med(mode, k, "sub_fps_min"),
                    "publisher_cpu": med(mode, k, "publisher_cpu"),
                    "verified": sum(r["verified"] for r in every[(mode, k)]),
                    "settled": sum(r["settled"] for r in every[(mode, k)]),
                }
            )
        if all((m, k) in groups for m in MODES):
            out["ratio"][k] = med("on", k, "server_cpu") / med("off", k, "server_cpu")
    if len(ks) > 1:
        lo, hi = ks[0], ks[-1]
        for mode in MODES:
            if (mode, lo) in groups and (mode, hi) in groups:
                slope = (med(mode, hi, "server_cpu") - med(mode, lo, "server_cpu")) / (hi - lo)
                out["slope"][mode] = slope
        if len(out["slope"]) == 2:
            out["slope_ratio"] = out["slope"]["on"] / out["slope"]["off"]
    return out


def table(summary: dict[str, Any]) -> str:
    rows = [
        "| K | simulcast | runs (counted) | server CPU % (range) | subscriber kbit/s "
        "| subscriber fps | publisher CPU % | as expected | settled |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary["rows"]:
        lo, hi = r["server_cpu_range"]
        rows.append(
            f"| {r['k']} | {r['mode']} | {r['runs']} ({r['counted']}) "
            f"| {r['server_cpu']:.1f} ({lo:.1f}-{hi:.1f}) "
            f"| {r['sub_kbps']:.0f} | {r['sub_fps_min']:.1f} | {r['publisher_cpu']:.0f} "
            f"| {r['verified']} of {r['runs']} | {r['settled']} of {r['runs']} |"
        )
    if summary["ratio"]:
        rows += ["", "| K | server CPU on / off |", "|---|---|"]
        rows += [f"| {k} | {v:.2f} |" for k, v in summary["ratio"].items()]
    if summary["slope"]:
        rows += ["", "| simulcast | per extra subscriber, % of a core |", "|---|---|"]
        rows += [f"| {m} | {v:.2f} |" for m, v in summary["slope"].items()]
        if "slope_ratio" in summary:
            rows.append(f"| on / off | {summary['slope_ratio']:.2f} |")
    return "\n".join(rows)


def inside_private_netns() -> bool:
    import socket

    names = {name for _, name in socket.if_nameindex()}
    return names <= {"lo", "sfu0", "sfu1"} and {"sfu0", "sfu1"} <= names


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from playwright.async_api import async_playwright

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-simulcast-") as tmp:
        workdir = Path(tmp)
        clip = workdir / "camera.y4m"
        write_clip(clip, 640, 480, args.fps, args.clip_seconds, args.noise)
        async with async_playwright() as pw:
            for repeat in range(args.repeat):
                for k in args.subscribers:
                    modes = args.modes if repeat % 2 == 0 else args.modes[::-1]
                    for mode in modes:
                        result = await measure(pw, mode, k, clip, workdir, args)
                        results.append(result)
                        print(line(result), flush=True)
        if args.keep_log:
            shutil.copy(workdir / "server.log", args.keep_log)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--seconds", type=float, default=10, help="measuring window")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each mode and K")
    parser.add_argument(
        "--warmup", type=float, default=8, help="least seconds the publisher warms up alone"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=60,
        help="longest wait of each warm-up step (see measure())",
    )
    parser.add_argument("--fps", type=int, default=24, help="the camera's (the app asks 24)")
    parser.add_argument("--noise", type=int, default=12, help="per-frame luma noise (0..64)")
    parser.add_argument("--clip-seconds", type=float, default=3, help="the camera's loop")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--verbose", action="store_true", help="trace the warm-up")
    parser.add_argument("--audio", action="store_true", help="publish the microphone too")
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    parser.add_argument("--keep-log", type=Path, help="copy the servers' log here")
    args = parser.parse_args()
    if not inside_private_netns() and os.environ.get("SFU_BENCH_ANY_NETWORK") != "1":
        sys.exit("run inside scripts/netns-run (WebRTC traffic must stay in a private namespace)")
    if not (ROOT / "sfu" / "web" / "index.html").is_file():
        sys.exit("the web app is not built: cd client && npm ci && npm run build")
    if not Path(CHROMIUM).exists():
        sys.exit(f"chromium not found at {CHROMIUM}")
    results = asyncio.run(run(args))
    summary = summarise(results)
    print()
    print(table(summary))
    print()
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"results": results, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
