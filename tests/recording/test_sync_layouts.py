"""Lip sync, speaker layout, screen share, WebM, raw tracks: decoded back with PyAV."""

from __future__ import annotations

import random

import av
import numpy as np
import pytest

from sfu.recording import Recorder, RecordingStore
from sfu.recording.compositor import compute_layout
from sfu.recording.timeline import ManualClock
from sfu.settings import RecordingSettings
from tests.recording.recsynth import (
    BLUE,
    GREEN,
    RED,
    YELLOW,
    Feed,
    decode,
    drive,
    feeds,
    h264_frames,
    level_at,
    opus_frames,
    packet_actions,
    tone,
    vp8_frames,
)

FLASHES = (1.5, 3.0, 4.5)


def jittered(items: list[Feed], seed: int, most: float = 0.030) -> list[Feed]:
    rng = random.Random(seed)
    last = 0.0
    for f in items:
        f.at = last = max(last, f.at + rng.uniform(0, most))
    return items


def _flash_video(t: float) -> tuple[int, int, int]:
    return (255, 255, 255) if any(f <= t < f + 0.1 for f in FLASHES) else (60, 60, 60)


def _beep(t: np.ndarray) -> np.ndarray:
    on = np.zeros_like(t, dtype=bool)
    for f in FLASHES:
        on |= (t >= f) & (t < f + 0.1)
    return np.where(on, 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0)


@pytest.mark.parametrize("container", ["mp4", "webm"])
def test_flash_and_beep_stay_within_40ms(tmp_path, container):
    """Flash and beep happen together at the source: within 40 ms of each other in the file.

    Packets arrive with up to 30 ms of network jitter (in order per track, as after a jitter
    buffer); the recorder places them by their RTP timestamps, not their arrival.
    """
    settings = RecordingSettings(
        directory=tmp_path, width=320, height=180, fps=30, container=container
    )
    clock = ManualClock()
    rec = Recorder("sync", settings, clock=clock)
    # Track-relative times: the audio's first packet arrives 25 ms after the video's, as both
    # start capturing at 0.5 s; the mapping must keep their relation.
    video = jittered(feeds("a", vp8_frames(_flash_video, 0.5, 5.5, fps=30), "video"), 1)
    audio = jittered(feeds("a", opus_frames(_beep, 0.5, 5.5), "audio"), 2)
    drive(rec, clock, packet_actions(rec, video + audio), end=6.0)
    out = decode(rec.path, [(160, 60)])
    assert (out.video_codec, out.audio_codec) == (
        ("h264", "aac") if container == "mp4" else ("vp8", "opus")
    )
    luma = np.array([s[0].mean() for s in out.samples])
    bright = luma > 180
    onsets_v = [out.times[i] for i in range(1, len(bright)) if bright[i] and not bright[i - 1]]
    env = np.abs(out.audio)
    loud = np.convolve(env > 0.2, np.ones(48), "same") > 0
    idx = np.flatnonzero(loud[1:] & ~loud[:-1]) + 1
    onsets_a = [out.audio_start + i / 48000 for i in idx]
    assert len(onsets_v) == len(FLASHES) and len(onsets_a) == len(FLASHES), (onsets_v, onsets_a)
    for v, a, want in zip(onsets_v, onsets_a, FLASHES, strict=True):
        assert abs(v - a) <= 0.040, (v, a)
        assert abs(v - (0.5 + want)) <= 1 / 30 + 0.005
        # Each on its own is where it belongs too (Opus look-ahead in the source: 6.5 ms).
        assert abs(a - (0.5 + want)) <= 0.012, (a, want)


def flash_and_beep_onsets(out) -> tuple[list[float], list[float]]:
    luma = np.array([s[0].mean() for s in out.samples])
    bright = luma > 180
    onsets_v = [out.times[i] for i in range(1, len(bright)) if bright[i] and not bright[i - 1]]
    loud = np.convolve(np.abs(out.audio) > 0.2, np.ones(48), "same") > 0
    idx = np.flatnonzero(loud[1:] & ~loud[:-1]) + 1
    return onsets_v, [out.audio_start + i / 48000 for i in idx]


@pytest.mark.parametrize("sender_reports", [True, False])
def test_sender_reports_keep_lip_sync_when_video_travels_slower(tmp_path, sender_reports):
    """The publisher's video reaches the server 150 ms later than its audio, all along (a
    slower encoder, a pacer): placed by arrival the flash would trail the beep by 150 ms. With
    the capture times of its RTCP sender reports, both tracks share the sender's clock."""
    settings = RecordingSettings(directory=tmp_path, width=320, height=180, fps=30)
    clock = ManualClock()
    rec = Recorder("sr", settings, clock=clock)
    sender_epoch = 3_900_000_000.0  # NTP-like seconds: only differences matter
    video = feeds("a", vp8_frames(_flash_video, 0.5, 4.5, fps=30), "video")
    audio = feeds("a", opus_frames(_beep, 0.5, 4.5), "audio")
    for f in video + audio:
        if sender_reports:
            f.capture = sender_epoch + f.at
        if f.kind == "video":
            f.at += 0.150
    items = sorted(jittered(video, 3) + jittered(audio, 4), key=lambda f: f.at)
    drive(rec, clock, packet_actions(rec, items), end=5.2)
    onsets_v, onsets_a = flash_and_beep_onsets(decode(rec.path, [(160, 60)]))
    assert len(onsets_v) == len(onsets_a) >= 2, (onsets_v, onsets_a)
    offsets = [v - a for v, a in zip(onsets_v, onsets_a, strict=True)]
    if sender_reports:
        assert all(abs(o) <= 0.040 for o in offsets), offsets
    else:  # what arrival times alone give: the path difference, kept
        assert all(0.100 <= o <= 0.200 for o in offsets), offsets


def test_speaker_layout_follows_the_voice_and_screen_share_takes_the_stage(tmp_path):
    settings = RecordingSettings(
        directory=tmp_path, width=320, height=180, fps=10, layout="speaker", labels=False
    )
    clock = ManualClock()
    rec = Recorder("spk", settings, clock=clock)

    def quiet_then(freq: float, start: float, stop: float):
        return lambda t: np.where((t >= start) & (t < stop), 0.3 * np.sin(2 * np.pi * freq * t), 0)

    items = (
        feeds("a", vp8_frames(lambda t: RED, 0.0, 9.0), "video")
        + feeds("b", vp8_frames(lambda t: GREEN, 0.0, 9.0), "video")
        + feeds("a", opus_frames(quiet_then(440, 0.0, 3.0), 0.0, 9.0), "audio")
        + feeds("b", opus_frames(quiet_then(660, 3.0, 9.0), 0.0, 9.0), "audio")
        + feeds("b", vp8_frames(lambda t: YELLOW, 6.0, 2.0, size=(640, 360)), "video", "screen")
    )
    script = packet_actions(rec, items) + [
        (0.0, lambda: rec.participant_joined("a", "Ada")),
        (0.0, lambda: rec.participant_joined("b", "Bob")),
        (8.0, lambda: rec.track_ended("b", "screen", "video")),
    ]
    drive(rec, clock, script, end=9.0)
    main = compute_layout(["x", "y"], 320, 180, "speaker", "x")["x"]
    out = decode(rec.path, [main.centre])
    colour_at = {t: out.samples[round(t * 10)][0] for t in (2.0, 5.0, 7.0, 8.5)}
    assert np.abs(colour_at[2.0] - RED).max() < 40, colour_at  # A talks
    assert np.abs(colour_at[5.0] - GREEN).max() < 40, colour_at  # B took over
    assert np.abs(colour_at[7.0] - YELLOW).max() < 40, colour_at  # B's screen share
    assert np.abs(colour_at[8.5] - GREEN).max() < 40, colour_at  # share ended


def test_raw_mode_keeps_each_track_undecoded(tmp_path):
    settings = RecordingSettings(directory=tmp_path, width=320, height=180, fps=10, raw=True)
    clock = ManualClock()
    rec = Recorder("raw", settings, clock=clock)
    video = vp8_frames(lambda t: BLUE, 0.5, 3.0)
    items = feeds("u1", video, "video") + feeds("u1", opus_frames(tone(660), 0.5, 3.0), "audio")
    drive(rec, clock, packet_actions(rec, items), end=4.0)
    meta = rec.metadata()
    files = {(r["kind"]): tmp_path / r["file"] for r in meta["raw_tracks"]}
    assert set(files) == {"video", "audio"}
    with av.open(str(files["video"])) as c:
        packets = [bytes(p) for p in c.demux(video=0) if p.size]
    assert packets == [bytes(p) for _, p, _ in video]  # bit-exact
    with av.open(str(files["video"])) as c:
        frames = list(c.decode(video=0))
        assert np.abs(frames[5].to_ndarray(format="rgb24")[120, 160] - BLUE).max() < 30
        assert float(frames[0].time) == pytest.approx(0.5, abs=0.02)
    with av.open(str(files["audio"])) as c:
        pcm = np.concatenate([f.to_ndarray()[0] for f in c.decode(audio=0)])
    assert level_at(pcm, 660, 1.0, 2.5) > 0.3
    # Deleting the recording deletes its raw tracks too.
    assert RecordingStore(tmp_path).delete(rec.id)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_video_waits_for_a_keyframe_and_asks_for_one(tmp_path):
    settings = RecordingSettings(directory=tmp_path, width=320, height=180, fps=10, labels=False)
    clock = ManualClock()
    asked: list[tuple[str, str]] = []
    rec = Recorder("kf", settings, clock=clock, request_keyframe=lambda u, s: asked.append((u, s)))
    video = vp8_frames(lambda t: RED, 0.0, 4.0)  # keyframes at 0 s and 2 s
    joined_late = [item for item in video if item[0] >= 0.5]  # missed the first keyframe
    items = feeds("a", joined_late, "video")
    drive(
        rec,
        clock,
        packet_actions(rec, items) + [(0, lambda: rec.participant_joined("a", "A"))],
        end=4.0,
    )
    assert asked and set(asked) == {("a", "camera")}
    assert 1 <= len(asked) <= 2  # throttled: not one per P-frame
    out = decode(rec.path, [(160, 90)])
    assert np.abs(out.samples[15][0] - RED).max() > 80  # 1.5 s: placeholder, no garbage
    assert np.abs(out.samples[30][0] - RED).max() < 40  # 3.0 s: the picture


def test_leave_and_rejoin(tmp_path):
    settings = RecordingSettings(
        directory=tmp_path, width=320, height=180, fps=10, labels=False, background="#0000ff"
    )
    clock = ManualClock()
    rec = Recorder("rejoin", settings, clock=clock)
    video = [v for v in vp8_frames(lambda t: RED, 0.0, 5.0) if not 2.6 <= v[0] < 3.0]
    script = packet_actions(rec, feeds("a", video, "video")) + [
        (0.0, lambda: rec.participant_joined("a", "Ada")),
        (2.0, lambda: rec.participant_left("a")),  # packets go on until 2.6 s: stragglers
        (3.0, lambda: rec.participant_joined("a", "Ada")),
    ]
    drive(rec, clock, script, end=5.0)
    out = decode(rec.path, [(160, 90)])
    colour = {t: out.samples[round(t * 10)][0] for t in (1.0, 2.4, 3.5, 4.5)}
    assert np.abs(colour[1.0] - RED).max() < 40
    assert np.abs(colour[2.4] - (0, 0, 255)).max() < 40, colour  # gone: only the background
    assert np.abs(colour[3.5] - RED).max() > 80, colour  # back, waiting for a keyframe
    assert np.abs(colour[4.5] - RED).max() < 40, colour  # keyframe at 4 s
    [ada] = rec.metadata()["participants"]
    assert [(s["joined_offset"], s["left_offset"]) for s in ada["sessions"]] == [
        (0.0, 2.0),
        (3.0, None),
    ]


def test_h264_publishers_are_decoded_and_kept_raw(tmp_path):
    settings = RecordingSettings(directory=tmp_path, width=320, height=180, fps=10, raw=True)
    clock = ManualClock()
    rec = Recorder("h264", settings, clock=clock)
    video = h264_frames(lambda t: GREEN, 0.2, 3.0)
    assert bytes(video[0][1])[:4] == b"\x00\x00\x00\x01"
    # is_keyframe not given: detected from the NAL units.
    script = [
        (at, lambda p=p: rec.on_packet("h", "camera", "video", p, user_name="Hedy"))
        for at, p, _ in video
    ]
    drive(rec, clock, script, end=3.5)
    out = decode(rec.path, [(160, 60)])
    assert np.abs(out.samples[20][0] - GREEN).max() < 40
    assert rec.metadata()["participants"][0]["name"] == "Hedy"
    [raw] = rec.metadata()["raw_tracks"]
    assert raw["file"].endswith(".ts")
    with av.open(str(tmp_path / raw["file"])) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == len(video)
    assert np.abs(frames[10].to_ndarray(format="rgb24")[120, 160] - GREEN).max() < 30


def test_overload_sheds_packets_and_asks_for_a_keyframe_once(tmp_path):
    settings = RecordingSettings(directory=tmp_path, width=320, height=180, fps=10)
    asked: list[tuple[str, str]] = []
    rec = Recorder("busy", settings, max_queue=0, request_keyframe=lambda *a: asked.append(a))
    rec.start()
    for _, p, k in vp8_frames(lambda t: RED, 0.0, 1.0):
        rec.on_packet("a", "camera", "video", p, k)
    rec.stop()
    assert rec.dropped_packets == 15 and asked == [("a", "camera")]
    assert rec.state == "stopped"


def test_takes_the_media_routers_encoded_frames_as_they_come(tmp_path):
    """The router calls ``sink(user_id, source, kind, EncodedFrame)``: no adapter needed."""
    from sfu.media.frames import EncodedFrame

    settings = RecordingSettings(directory=tmp_path, width=320, height=180, fps=10)
    clock = ManualClock()
    rec = Recorder("router", settings, clock=clock)
    script = []
    for kind, source, items, codec, rate in (
        ("video", "camera", vp8_frames(lambda t: BLUE, 0.3, 3.0), "VP8", 90000),
        ("audio", "microphone", opus_frames(tone(440), 0.3, 3.0), "opus", 48000),
    ):
        first = items[0][1].pts
        for at, p, key in items:
            frame = EncodedFrame(bytes(p), (p.pts - first) % 2**32, kind, codec, rate, key)
            script.append((at, lambda s=source, k=kind, f=frame: rec.on_packet("r", s, k, f)))
    drive(rec, clock, script, end=3.5)
    out = decode(rec.path, [(160, 60)])
    assert np.abs(out.samples[20][0] - BLUE).max() < 40
    assert level_at(out.audio, 440, 1.0, 3.0) > 0.3
