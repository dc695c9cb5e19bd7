"""Recorder CPU and event-loop lag while recording a composite of N publishers.

Each publisher sends 640x360 VP8 at 30 fps (moving content) and 20 ms Opus packets, delivered
in real time from an asyncio task, as the SFU router would. The recorder composes 1280x720 at
30 fps (the defaults: H.264 veryfast CRF 23 + AAC, fragmented MP4).

CPU is the whole process's CPU time (all threads: decoders, compositor, x264's threads)
divided by wall time, in % of one core; the feeder's own cost is measured first without a
recorder and reported separately. Event-loop lag: how late a 10 ms timer fires.

    .venv/bin/python benchmarks/recording.py --seconds 20 --participants 2 4 9

``--labels compare`` measures names drawn with the installed fonts (FreeType, per-character
fallback; the default) against the built-in bitmap font, alternating runs in one process and
printing the ratio, with names in several scripts; ``--layout audio`` an audio-only recording.

    .venv/bin/python benchmarks/recording.py --seconds 15 --participants 4 --labels compare
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sfu.recording import Recorder  # noqa: E402
from sfu.recording.text import TextRenderer  # noqa: E402
from sfu.settings import RecordingSettings  # noqa: E402

# Names in several scripts: per-character font fallback, shaping and right to left.
NAMES = ["Zoë Ñúñez", "Зоя Петрова", "محمد علي", "王小明", "Ada 😀", "Σοφία Αλεξίου"]

LOOP_SECONDS = 4.0
VIDEO_TB = fractions.Fraction(1, 90000)
AUDIO_TB = fractions.Fraction(1, 48000)


def _typical(i: int, w: int, h: int, rng: np.random.Generator, background: np.ndarray):
    """Webcam-like: a still, textured room, a swaying head and shoulders, sensor noise."""
    img = background.copy()
    cx = w // 2 + int(40 * np.sin(i / 30 * 2 * np.pi * 0.3))
    cy = h // 2 + int(6 * np.sin(i / 30 * 2 * np.pi * 0.7))
    yy, xx = np.ogrid[0:h, 0:w]
    head = ((xx - cx) / 70.0) ** 2 + ((yy - cy + 30) / 90.0) ** 2 <= 1
    body = ((xx - cx) / 160.0) ** 2 + ((yy - h) / 120.0) ** 2 <= 1
    img[head] = (205, 160, 130)
    img[body] = (40, 70, 120)
    noise = rng.integers(-2, 3, size=img.shape, dtype=np.int16)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def _motion(i: int, w: int, h: int) -> np.ndarray:
    """Worst case: every pixel moves every frame (scrolling gradients, a bouncing box)."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[..., 0] = (xx + i * 4) % 256
    img[..., 1] = (yy + i * 2) % 256
    img[..., 2] = 128
    bx = int((w - 80) * (0.5 + 0.5 * np.sin(i / 15)))
    img[140:220, bx : bx + 80] = 255
    return img


def make_video(
    content: str = "typical", w: int = 640, h: int = 360, fps: int = 30
) -> list[tuple[float, bytes, bool]]:
    """A loop of VP8 frames that starts with a keyframe."""
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.time_base = VIDEO_TB
    enc.framerate = fps
    enc.bit_rate = 800_000
    enc.gop_size = 3000
    enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:h, 0:w]
    background = np.stack(
        [90 + xx * 60 // w, 80 + yy * 50 // h, np.full_like(xx, 70)], axis=-1
    ).astype(np.uint8)
    background[::8] = (background[::8] * 0.8).astype(np.uint8)  # some texture: shelves
    out = []
    for i in range(int(LOOP_SECONDS * fps)):
        img = _typical(i, w, h, rng, background) if content == "typical" else _motion(i, w, h)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = i * 3000
        frame.time_base = VIDEO_TB
        for p in enc.encode(frame):
            out.append((p.pts / 90000, bytes(p), p.is_keyframe))
    return out


def make_audio(freq: float = 440) -> list[tuple[float, bytes, bool]]:
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format = 48000, "mono", "s16"
    enc.time_base = AUDIO_TB
    out = []
    for i in range(int(LOOP_SECONDS * 50)):
        t = (np.arange(960) + i * 960) / 48000
        pcm = (0.2 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, i * 960, AUDIO_TB
        for p in enc.encode(frame):
            out.append((len(out) * 0.02, bytes(p), True))
    return out


async def run(
    n: int,
    seconds: float,
    video,
    audio,
    record: bool,
    preset: str = "veryfast",
    threads: int = 2,
    labels: str = "font",
    layout: str = "grid",
) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory() as tmp:
        settings = RecordingSettings(
            directory=Path(tmp), preset=preset, encoder_threads=threads, layout=layout
        )
        rec = Recorder("bench", settings, loop=loop)
        sink = rec.on_packet if record else (lambda *a, **k: None)
        if record:
            rec.start()
            if labels == "bitmap" and rec._compositor is not None:
                # Before the first picture (the worker runs latency_ms behind): no fonts.
                rec._compositor.text = TextRenderer(fonts=())
            for i in range(n):
                rec.participant_joined(f"u{i}", NAMES[i % len(NAMES)])
        lags: list[float] = []
        stop = False

        async def ticker() -> None:
            while not stop:
                t = loop.time()
                await asyncio.sleep(0.01)
                lags.append(loop.time() - t - 0.01)

        async def feeder() -> None:
            schedule = sorted(
                [(t, "video", d, k) for t, d, k in video]
                + [(t, "audio", d, k) for t, d, k in audio]
            )
            start = loop.time()
            lap = 0
            while not stop:
                for t, kind, data, key in schedule:
                    at = lap * LOOP_SECONDS + t
                    delay = start + at - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if stop:
                        return
                    tb = VIDEO_TB if kind == "video" else AUDIO_TB
                    for i in range(n):
                        p = av.Packet(data)
                        p.pts = round(at / tb) + i * 1000
                        p.time_base = tb
                        sink(f"u{i}", "camera" if kind == "video" else "mic", kind, p, key)
                lap += 1

        tick, feed = asyncio.create_task(ticker()), asyncio.create_task(feeder())
        await asyncio.sleep(2.0)  # warm-up: decoders and encoder start, caches fill
        cpu0, wall0, lags_from = time.process_time(), time.perf_counter(), len(lags)
        await asyncio.sleep(seconds)
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        window = lags[lags_from:]
        stop = True
        await asyncio.gather(tick, feed)
        if record:
            await rec.stop_async()
            assert rec.state == "stopped", rec.error
        return {
            "cpu_pct": 100 * cpu / wall,
            "lag_p99_ms": 1000 * statistics.quantiles(window, n=100)[98],
            "lag_max_ms": 1000 * max(window),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--participants", type=int, nargs="+", default=[2, 4, 9])
    ap.add_argument("--content", choices=["typical", "motion"], default="typical")
    ap.add_argument("--preset", default="veryfast", help="x264 preset")
    ap.add_argument("--threads", type=int, default=2, help="encoder threads (0: auto)")
    ap.add_argument("--layout", choices=["grid", "speaker", "audio"], default="grid")
    ap.add_argument(
        "--labels",
        choices=["font", "bitmap", "compare"],
        default="font",
        help="names with the installed fonts, the bitmap font, or both compared",
    )
    ap.add_argument(
        "--repeats", type=int, default=2, help="runs of each kind with --labels compare"
    )
    args = ap.parse_args()
    video, audio = make_video(args.content), make_audio()
    kbps = sum(len(d) for _, d, _ in video) * 8 / LOOP_SECONDS / 1e3
    output = (
        "audio only, Ogg/Opus"
        if args.layout == "audio"
        else f"1280x720 30 fps H.264 {args.preset} CRF 23 ({args.threads} threads) + AAC, "
        f"fragmented MP4, {args.layout}"
    )
    print(f"input: {args.content} 640x360 VP8 30 fps ({kbps:.0f} kbit/s) + Opus; output {output}")
    kinds = ["bitmap", "font"] * args.repeats if args.labels == "compare" else [args.labels]
    print(
        "| publishers | labels | feeder CPU % | process CPU % | recorder CPU % "
        "| loop lag p99 / max ms |"
    )
    print("|---|---|---|---|---|---|")
    for n in args.participants:
        base = asyncio.run(run(n, min(args.seconds, 10), video, audio, record=False))
        cost: dict[str, list[float]] = {}
        for kind in kinds:
            rec = asyncio.run(
                run(
                    n,
                    args.seconds,
                    video,
                    audio,
                    record=True,
                    preset=args.preset,
                    threads=args.threads,
                    labels=kind,
                    layout=args.layout,
                )
            )
            cost.setdefault(kind, []).append(rec["cpu_pct"] - base["cpu_pct"])
            print(
                f"| {n} | {kind} | {base['cpu_pct']:.1f} | {rec['cpu_pct']:.1f} | "
                f"{rec['cpu_pct'] - base['cpu_pct']:.1f} | "
                f"{rec['lag_p99_ms']:.1f} / {rec['lag_max_ms']:.1f} |",
                flush=True,
            )
        if args.labels == "compare":
            font, bitmap = statistics.mean(cost["font"]), statistics.mean(cost["bitmap"])
            print(
                f"{n} publishers: recorder CPU with fonts / with the bitmap font = "
                f"{font / bitmap:.3f} (means of {args.repeats} runs each: "
                f"{font:.1f} / {bitmap:.1f})",
                flush=True,
            )


if __name__ == "__main__":
    main()
