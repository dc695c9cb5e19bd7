"""The composite recorder: a consumer of a room's media router, like any participant.

``on_packet`` (router sink), ``participant_joined`` and ``participant_left`` only stamp the
event with the timeline clock and queue it: they never block and may be called from any
thread. One worker thread per recording decodes every track once, maps it onto the timeline,
composes the picture, mixes the audio and encodes, ``latency`` behind the wall clock so late
packets still make it in. The output frame rate is constant: exactly ``fps`` pictures per
second of timeline, the last picture repeated when nothing new arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import queue
import shutil
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import numpy as np

from sfu.media.rtp.codecs import guess_video_codec, is_keyframe
from sfu.media.speaker import ActiveSpeaker
from sfu.recording import store as store_mod
from sfu.recording import thumbnail as thumbnail_mod
from sfu.recording.compositor import Compositor, Tile, parse_colour
from sfu.recording.mixer import RATE, Mixer
from sfu.recording.raw import RawTrackWriter
from sfu.recording.timeline import Clock, TrackClock, monotonic
from sfu.recording.writer import EXTENSIONS, Writer
from sfu.settings import RecordingSettings

log = logging.getLogger(__name__)

FADE_SAMPLES = RATE // 100  # 10 ms ramps where a voice starts or the recording ends
CAMERA_STALE_SECONDS = 3.0  # no picture for this long: show the placeholder
SCREEN_STALE_SECONDS = 10.0  # static screens are sent at a low rate
DISK_CHECK_SECONDS = 2.0
KEYFRAME_RETRY_SECONDS = 1.0


def is_screen(source: str) -> bool:
    return "screen" in source.lower()


def detect_keyframe(data: bytes) -> bool:
    """Keyframe test from the bytes alone (the codec told by their shape)."""
    return bool(data) and is_keyframe(guess_video_codec(data), data)


@dataclass(slots=True)
class _Packet:
    arrival: float
    user_id: str
    source: str
    kind: str
    data: bytes
    pts: int
    time_base: Any
    keyframe: bool
    capture: float | None = None  # the sender's wall clock (RTCP SR), seconds


@dataclass(slots=True)
class _Event:
    at: float
    action: str  # join, leave, ended, speaker
    user_id: str | None
    name: str = ""
    source: str = ""
    kind: str = ""


@dataclass(slots=True)
class _Session:
    joined: float
    left: float | None = None  # None: still there


@dataclass
class _Participant:
    user_id: str
    name: str
    order: int
    sessions: list[_Session] = field(default_factory=list)

    def present(self, t: float) -> bool:
        return any(s.joined <= t and (s.left is None or t < s.left) for s in self.sessions)


@dataclass
class _Track:
    user_id: str
    source: str
    kind: str
    clock: TrackClock = field(default_factory=TrackClock)
    decoder: Any = None
    waiting_keyframe: bool = True
    pending: deque[tuple[float, av.VideoFrame]] = field(default_factory=deque)
    frame: av.VideoFrame | None = None
    frame_id: int = 0
    frame_at: float = -1e9
    ended_at: float | None = None
    resampler: av.AudioResampler | None = None
    next_pos: int | None = None
    level: float = 0.0
    level_at: float = -1e9
    raw: RawTrackWriter | None = None
    keyframe_asked_at: float = -1e9
    cut: float = -1e9  # pictures from before this (an earlier session) are never shown again


class Recorder:
    """Records one room into one composite file (plus raw per-track files if asked).

    Args:
        room: room id, used in the file name and metadata.
        settings: the ``recording`` settings section.
        on_stopped: called once with the reason ("stopped", "disk full", "encoder error: ..")
            when the recording ends for any reason; on ``loop`` if given, else on the worker.
        request_keyframe: called with (user_id, source) when a video track needs a keyframe
            to be decodable (start, after a decode error or dropped packets).
        clock: monotonic seconds; injectable so tests can run faster than real time.
        now_utc: wall-clock start time for names and metadata.
        latency: how far the output runs behind the clock, so jitter does not lose packets.
        loop: event loop to deliver callbacks on.
        info: what the caller knows of the recording that the recorder does not, put into the
            metadata as is (the room layer's ``roomName``, ``startedBy``, ``startedByName``).
    """

    def __init__(
        self,
        room: str,
        settings: RecordingSettings,
        *,
        on_stopped: Callable[[str], None] | None = None,
        request_keyframe: Callable[[str, str], None] | None = None,
        clock: Clock = monotonic,
        now_utc: Callable[[], datetime] = lambda: datetime.now(UTC),
        latency: float | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        max_queue: int = 5000,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.room = room
        self.info: dict[str, Any] = dict(info or {})
        self.settings = settings
        self.on_stopped = on_stopped
        self.request_keyframe = request_keyframe
        self._clock = clock
        self._now_utc = now_utc
        self.latency = latency if latency is not None else settings.latency_ms / 1000
        self._loop = loop
        self._max_queue = max_queue
        self.fps: int = settings.fps
        self.state = "created"  # -> recording -> stopped | error
        self.error: str | None = None
        self.stop_reason: str | None = None
        self.id: str | None = None
        self.path: Path | None = None
        self.dropped_packets = 0
        self.frames_written = 0
        # Seconds of the timeline written to the file so far (video and audio): after a stop,
        # how far the worker is in finishing it.
        self.written_seconds = 0.0
        self.thumbnail: str | None = None  # the thumbnail's file name, once made
        self._queue: queue.SimpleQueue[_Packet | _Event] = queue.SimpleQueue()
        self._needs_keyframe: set[tuple[str, str]] = set()
        self._announced: set[str] = set()  # caller side: user ids already joined by name
        self._stop_event = threading.Event()
        self._stop_at: float | None = None
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._start_utc: datetime | None = None
        self._participants: dict[str, _Participant] = {}
        self._tracks: dict[tuple[str, str, str], _Track] = {}
        # One clock per publisher for frames with a sender-report capture time: its audio and
        # video then keep the relation they had when captured, whatever their path delays.
        self._sender_clocks: dict[str, TrackClock] = {}
        self._speaker: str | None = None
        self._speaker_manual: str | None = None
        self._stage = ActiveSpeaker()  # the one speaker rule (sfu/media/speaker.py)
        self._writer: Writer | None = None
        self._raw_files: list[dict[str, Any]] = []

    # ----------------------------------------------------------------- control

    def start(self, participants: Iterable[tuple[str, str]] = ()) -> None:
        """Open the output file and start the worker. Raises if the file cannot be created.

        ``participants``: (user id, name) of those already in the room, shown from the first
        picture (``participant_joined`` after ``start`` stamps the time it is called, later
        by however long opening the file and getting back to the caller took).
        """
        if self.state != "created":
            raise RuntimeError(f"recorder already {self.state}")
        s = self.settings
        directory = Path(s.directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._start_utc = self._now_utc()
        container = self.container
        ext = EXTENSIONS[container]
        self.id = store_mod.new_id(directory, self.room, self._start_utc, ext)
        self.path = directory / f"{self.id}.{ext}"
        self._writer = Writer(
            self.path,
            container,
            s.width,
            s.height,
            s.fps,
            crf=s.video_crf,
            video_bitrate_kbps=s.video_bitrate_kbps,
            preset=s.preset,
            audio_bitrate_kbps=s.audio_bitrate_kbps,
            keyframe_seconds=s.keyframe_seconds,
            threads=s.encoder_threads,
        )
        self._compositor: Compositor | None = None
        if not self.audio_only:
            self._compositor = Compositor(
                s.width, s.height, parse_colour(s.background), s.labels, font_path=s.font
            )
        self._mixer = Mixer()
        self._mixer.cursor = self._writer.audio_skip
        self._frame_index = 0
        self._t0 = self._clock()
        self.state = "recording"
        for user_id, name in participants:
            self._announced.add(user_id)
            self._queue.put(_Event(0.0, "join", user_id, name=name))
        self._write_meta()
        self._thread = threading.Thread(target=self._run, name=f"recorder-{self.room}", daemon=True)
        self._thread.start()

    @property
    def audio_only(self) -> bool:
        """``layout = "audio"``: the mixed audio only, in ``audio_format``; video is not decoded."""
        return self.settings.layout == "audio"

    @property
    def container(self) -> str:
        return self.settings.audio_format if self.audio_only else self.settings.container

    def request_stop(self, reason: str = "stopped") -> None:
        """Ask the recording to end now; returns at once (the worker finishes the file)."""
        if self.state != "recording" or self._stop_event.is_set():
            return
        self._stop_at = self._now()
        self.stop_reason = reason
        self._stop_event.set()

    def stopped_by(self, user_id: str | None, name: str | None) -> None:
        """Who stops it (None: the administrator, or no one: the room closed, a failure); for
        the metadata. Call before :meth:`request_stop`; after it, the first stop stands."""
        if self.state == "recording" and not self._stop_event.is_set():
            self.info.update(stoppedBy=user_id, stoppedByName=name)

    def live_status(self) -> dict[str, Any]:
        """``status`` for a recordings list: ``recording``, ``finishing`` (stopped, the file
        not complete yet; ``progress`` 0..1 of the timeline written), ``ready`` or ``failed``."""
        if self.state == "error":
            return {"status": "failed", "progress": None}
        if self.state == "stopped":
            return {"status": "ready", "progress": None}
        if self.state != "recording" or not self._stop_event.is_set() or self._stop_at is None:
            return {"status": "recording", "progress": None}
        total = self._stop_at
        done = min(1.0, self.written_seconds / total) if total > 0 else 1.0
        return {"status": "finishing", "progress": round(done, 3), "duration": round(total, 3)}

    def stop(self, reason: str = "stopped", timeout: float | None = 30) -> None:
        """End the recording and wait until the file is complete (blocking)."""
        self.request_stop(reason)
        if self._thread is not None:
            self._thread.join(timeout)

    async def stop_async(self, reason: str = "stopped") -> None:
        """``stop`` for the event loop: waits in a thread."""
        self.request_stop(reason)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    @property
    def duration(self) -> float:
        """Seconds recorded so far (or in all, once stopped)."""
        if self.state == "created":
            return 0.0
        end = self._stop_at if self._stop_at is not None else self._now()
        return max(0.0, end)

    # ----------------------------------------------------------------- inputs

    def participant_joined(self, user_id: str, name: str) -> None:
        """A participant entered the room: a tile appears (placeholder until video)."""
        self._announced.add(user_id)
        self._put(_Event(self._now(), "join", user_id, name=name))

    def participant_left(self, user_id: str) -> None:
        """A participant left: the tile goes and the layout closes up."""
        self._put(_Event(self._now(), "leave", user_id))

    def track_ended(self, user_id: str, source: str, kind: str) -> None:
        """A producer closed (camera off, screen share stopped)."""
        self._put(_Event(self._now(), "ended", user_id, source=source, kind=kind))

    def set_active_speaker(self, user_id: str | None) -> None:
        """Override the speaker detection (None: back to detection from the audio)."""
        self._put(_Event(self._now(), "speaker", user_id))

    def on_packet(
        self,
        user_id: str,
        source: str,
        kind: str,
        packet: av.Packet | Any,
        is_keyframe: bool | None = None,
        *,
        user_name: str | None = None,
        capture: float | None = None,
    ) -> None:
        """Router sink: one encoded frame (VP8/H.264 video, Opus audio).

        ``packet`` is an ``av.Packet`` with pts and time_base in the RTP clock, or the media
        router's ``EncodedFrame`` (``data``, ``timestamp``, ``clock_rate``, ``keyframe``), so
        ``router.add_sink(recorder.on_packet)`` works as is. ``is_keyframe=None``: taken from
        the frame, else detected from the payload. Never blocks; av.Packet payloads are copied
        so the router may reuse the packet. ``capture``: when the frame was captured on the
        sender's wall clock (from its RTCP sender reports; the frame's own ``capture`` if
        it has one), which puts a publisher's audio and video on one clock.
        """
        if self.state != "recording" or self._stop_event.is_set():
            return
        if kind == "video" and self.audio_only and not self.settings.raw:
            return  # nothing to do with it: not even a copy
        if isinstance(packet, av.Packet):
            pts, time_base, data = packet.pts, packet.time_base, bytes(packet)
        else:
            pts, data = packet.timestamp, packet.data
            time_base = fractions.Fraction(1, packet.clock_rate)
            if capture is None:
                capture = getattr(packet, "capture", None)
            if is_keyframe is None:
                is_keyframe = bool(packet.keyframe)
        if pts is None or time_base is None or not data:
            return
        key = is_keyframe if is_keyframe is not None else kind == "video" and detect_keyframe(data)
        if self._queue.qsize() >= self._max_queue:
            # The worker is far behind: shed load; video resumes at the next keyframe.
            self.dropped_packets += 1
            if kind == "video" and (user_id, source) not in self._needs_keyframe:
                self._needs_keyframe.add((user_id, source))
                if self.request_keyframe is not None:
                    self._callback(self.request_keyframe, user_id, source)
            return
        if kind == "video" and (user_id, source) in self._needs_keyframe:
            if not key:
                self.dropped_packets += 1
                return
            self._needs_keyframe.discard((user_id, source))
        if user_name is not None and user_id not in self._announced:
            self._announced.add(user_id)
            self._put(_Event(self._now(), "join", user_id, name=user_name))
        self._queue.put(
            _Packet(self._now(), user_id, source, kind, data, pts, time_base, key, capture)
        )

    def _put(self, item: _Packet | _Event) -> None:
        if self.state == "recording" and not self._stop_event.is_set():
            self._queue.put(item)

    def _now(self) -> float:
        return self._clock() - self._t0

    # ----------------------------------------------------------------- worker

    def _run(self) -> None:
        reason = "stopped"
        failed = False
        try:
            next_disk_check = 0.0
            while True:
                now = self._now()  # read before draining: events stamped <= now are queued
                stopping = self._stop_event.is_set()
                self._drain()
                if stopping:
                    assert self._stop_at is not None
                    self._mixer.fade_out(round(self._stop_at * RATE), FADE_SAMPLES)
                    self._emit_until(self._stop_at, final=True)
                    reason = self.stop_reason or "stopped"
                    break
                self._emit_until(now - self.latency)
                if now >= next_disk_check:
                    next_disk_check = now + DISK_CHECK_SECONDS
                    self._check_disk()
                self._stop_event.wait(0.01)
        except OSError as exc:
            failed = True
            reason = "disk full" if exc.errno == 28 else f"write error: {exc}"
        except av.error.FFmpegError as exc:
            failed = True
            reason = f"encoder error: {exc}"
        except _DiskLow:
            failed = True
            reason = "disk full"
        except Exception as exc:  # never leave the room hanging without a callback
            log.exception("recording %s failed", self.id)
            failed = True
            reason = f"error: {exc}"
        self._finish(reason, failed)

    def _finish(self, reason: str, failed: bool) -> None:
        if self._stop_at is None:
            self._stop_at = self._frame_index / self.fps
        self.stop_reason = reason
        if self._writer is not None:
            try:
                self._writer.close(flush=not failed)
            except Exception as exc:  # the fragments already on disk stay playable
                log.warning("closing %s: %s", self.path, exc)
                if not failed:
                    failed, reason = True, f"write error: {exc}"
                    self.stop_reason = reason
        for track in self._tracks.values():
            if track.raw is not None:
                with contextlib.suppress(Exception):
                    track.raw.close()
        if self.frames_written and self.path is not None:
            self._make_thumbnail(self.path)
        self.written_seconds = self._stop_at
        if failed:
            self.state, self.error = "error", reason
        else:
            self.state = "stopped"
        try:
            self._write_meta()
        except OSError as exc:
            log.warning("metadata for %s: %s", self.id, exc)
        if self.on_stopped is not None:
            self._callback(self.on_stopped, reason)

    def _make_thumbnail(self, path: Path) -> None:
        """The picture from the middle of the complete file (a failed one's fragments too);
        a file that cannot be read gets none, and the recording is not failed for it."""
        try:
            made = thumbnail_mod.make(path, (self._stop_at or 0) / 2)
        except (OSError, av.error.FFmpegError, ValueError) as exc:
            log.warning("thumbnail of %s: %s", self.id, exc)
            return
        self.thumbnail = made.name if made is not None else None

    def _check_disk(self) -> None:
        min_free = self.settings.min_free_mb
        if min_free and self.path is not None:
            if shutil.disk_usage(self.path.parent).free < min_free * 1024 * 1024:
                raise _DiskLow()

    def _drain(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            # Output up to this item's arrival first, as a worker that kept up would have: the
            # result is the same however far behind the worker runs (and in simulated time).
            at = item.at if isinstance(item, _Event) else item.arrival
            self._emit_until(at - self.latency)
            if isinstance(item, _Event):
                self._apply_event(item)
            else:
                self._handle_packet(item)

    def _apply_event(self, ev: _Event) -> None:
        if ev.action == "join" and ev.user_id is not None:
            p = self._participants.get(ev.user_id)
            if p is None:
                p = self._participants[ev.user_id] = _Participant(
                    ev.user_id, ev.name or ev.user_id, len(self._participants)
                )
            elif ev.name:
                p.name = ev.name
            if not p.sessions or p.sessions[-1].left is not None:
                p.sessions.append(_Session(ev.at))
        elif ev.action == "leave" and ev.user_id in self._participants:
            p = self._participants[ev.user_id]
            if p.sessions and p.sessions[-1].left is None:
                p.sessions[-1].left = ev.at
            for track in self._tracks.values():
                if track.user_id == ev.user_id and track.ended_at is None:
                    track.ended_at = ev.at
                    # A rejoin brings a new stream: resync on its keyframe and timestamps.
                    track.waiting_keyframe, track.next_pos = True, None
        elif ev.action == "ended":
            ended = self._tracks.get((ev.user_id or "", ev.source, ev.kind))
            if ended is not None:
                ended.ended_at = ev.at
        elif ev.action == "speaker":
            self._speaker_manual = ev.user_id

    def _track(self, pkt: _Packet) -> _Track | None:
        participant = self._participants.get(pkt.user_id)
        if participant is None:  # never announced: joins with its first packet
            self._apply_event(_Event(pkt.arrival, "join", pkt.user_id, name=pkt.user_id))
        elif not participant.present(pkt.arrival):
            return None  # stragglers from someone who left must not bring the tile back
        key = (pkt.user_id, pkt.source, pkt.kind)
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = _Track(pkt.user_id, pkt.source, pkt.kind)
            if self.settings.raw:
                self._open_raw(track, pkt)
        elif track.ended_at is not None and pkt.arrival >= track.ended_at:
            # The producer is back (camera on again, or a rejoin): no frozen old picture.
            track.cut, track.ended_at = track.ended_at, None
        return track

    def _handle_packet(self, pkt: _Packet) -> None:
        track = self._track(pkt)
        if track is None:
            return
        # Packets later than the latency miss their place (audio is lost, pictures show late):
        # a track whose delay grew for good is re-anchored. Audio and video alike, so a
        # publisher's two tracks keep their relation when their path slows down.
        if pkt.capture is not None:
            # Sender-report time: the publisher's tracks share one clock, anchored by the
            # faster path; the slower track's packets come a little late, inside the latency.
            clock = self._sender_clocks.setdefault(pkt.user_id, TrackClock())
            at = clock.map(pkt.capture, pkt.arrival, self.latency)
        else:
            media = float(track.clock.unwrap(pkt.pts) * pkt.time_base)
            at = track.clock.map(media, pkt.arrival, self.latency)
        if track.raw is not None:
            track.raw.write(pkt.data, at, pkt.keyframe)
        if pkt.kind == "video":
            if not self.audio_only:
                self._decode_video(track, pkt, at)
        elif pkt.kind == "audio":
            self._decode_audio(track, pkt, at)

    def _decode_video(self, track: _Track, pkt: _Packet, at: float) -> None:
        if track.waiting_keyframe:
            if not pkt.keyframe:
                self._ask_keyframe(track, pkt.arrival)
                return
            track.waiting_keyframe = False
        if track.decoder is None:
            h264 = pkt.data[:3] == b"\x00\x00\x01" or pkt.data[:4] == b"\x00\x00\x00\x01"
            track.decoder = av.CodecContext.create("h264" if h264 else "vp8", "r")
        try:
            frames = track.decoder.decode(av.Packet(pkt.data))
        except av.error.FFmpegError:
            # Corrupt or missing reference: wait for the next keyframe rather than show garbage.
            track.waiting_keyframe = True
            self._ask_keyframe(track, pkt.arrival)
            return
        for frame in frames:
            track.pending.append((at, frame))
        # Pictures wait for their time (``latency``); more than seconds of them is a bad clock.
        while len(track.pending) > 4 * self.fps:
            track.pending.popleft()

    def _ask_keyframe(self, track: _Track, now: float) -> None:
        # Once per KEYFRAME_RETRY_SECONDS: every P-frame before the keyframe would ask again.
        if self.request_keyframe is None or now - track.keyframe_asked_at < KEYFRAME_RETRY_SECONDS:
            return
        track.keyframe_asked_at = now
        self._callback(self.request_keyframe, track.user_id, track.source)

    def _callback(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call back on the event loop if there is one (thread-safe), else right here."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
                self._loop.call_soon_threadsafe(fn, *args)
            return
        try:
            fn(*args)
        except Exception:
            log.exception("recording callback %s", fn)

    def _decode_audio(self, track: _Track, pkt: _Packet, at: float) -> None:
        if track.decoder is None:
            track.decoder = av.CodecContext.create("opus", "r")
            track.decoder.sample_rate = RATE
            # Opus decodes straight to mono (an average); swr's stereo downmix would add 3 dB.
            track.decoder.layout = "mono"
            track.resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        try:
            frames = track.decoder.decode(av.Packet(pkt.data))
        except av.error.FFmpegError:
            return
        assert track.resampler is not None
        chunks = [f.to_ndarray().reshape(-1) for fr in frames for f in track.resampler.resample(fr)]
        if not chunks:
            return
        samples = np.concatenate(chunks).astype(np.float32, copy=False)
        pos = round(at * RATE)
        # Keep a track contiguous when its timestamps agree to within 2.5 ms (rounding): no
        # clicks between consecutive packets. A bigger difference is real: a gap (DTX, loss),
        # followed; or the track's clock moving earlier as less delayed packets arrive.
        if track.next_pos is None or pos > track.next_pos + RATE // 400:
            # A voice starting (or resuming after a gap) mid-mix: fade it in, no click (which
            # the AAC encoder would also turn into an overshoot past full scale).
            ramp = min(FADE_SAMPLES, len(samples))
            samples = samples.copy()
            samples[:ramp] *= np.linspace(0.0, 1.0, ramp, dtype=np.float32)
        elif abs(pos - track.next_pos) <= RATE // 400:
            pos = track.next_pos
        elif pos < track.next_pos:
            # The clock moved earlier (the track's delay shrank): never sum a voice with
            # itself, skip what overlaps what is already mixed.
            samples = samples[track.next_pos - pos :]
            pos = track.next_pos
            if not len(samples):
                return
        track.next_pos = pos + len(samples)
        self._mixer.add(pos, samples)
        rms = float(np.sqrt(np.mean(samples * samples)))
        track.level = max(rms, 0.7 * track.level) if at - track.level_at < 0.5 else rms
        track.level_at = at

    # ----------------------------------------------------------------- output

    def _emit_until(self, until: float, final: bool = False) -> None:
        assert self._writer is not None
        size = self._writer.audio_frame_size
        if final:
            end_sample = round(until * RATE)
            end_frame = max(0, int(np.ceil(until * self.fps - 1e-9)))
        else:
            end_sample = int(until * RATE) - size + 1
            end_frame = int(until * self.fps + 1e-9) + 1 if until >= 0 else 0
        if not self._writer.has_video:
            end_frame = 0
        while True:
            video_t = self._frame_index / self.fps if self._frame_index < end_frame else None
            audio_t = self._mixer.cursor / RATE if self._mixer.cursor < end_sample else None
            if video_t is None and audio_t is None:
                break
            if audio_t is not None and (video_t is None or audio_t <= video_t):
                pos = self._mixer.cursor
                self._writer.write_audio(self._mixer.take(size), pos)
                self.written_seconds = max(self.written_seconds, audio_t)
            else:
                assert video_t is not None
                self._writer.write_video(self._compose(video_t), self._frame_index)
                self._frame_index += 1
                self.frames_written = self._frame_index
                self.written_seconds = max(self.written_seconds, video_t)

    def _compose(self, t: float) -> av.VideoFrame:
        tiles: list[Tile] = []
        screens: list[Tile] = []
        people = sorted(
            (p for p in self._participants.values() if p.present(t)), key=lambda p: p.order
        )
        present_ids = {p.user_id for p in people}
        for track in self._tracks.values():
            if track.kind != "video":
                continue
            while track.pending and track.pending[0][0] <= t:
                track.frame_at, track.frame = track.pending.popleft()
                track.frame_id += 1
        self._update_speaker(t, present_ids)
        for p in people:
            camera: _Track | None = None
            for track in self._tracks.values():
                if track.user_id != p.user_id or track.kind != "video":
                    continue
                live = (
                    track.frame is not None
                    and (track.ended_at is None or t < track.ended_at)
                    and track.cut <= track.frame_at <= t
                )
                if is_screen(track.source):
                    if live and t - track.frame_at < SCREEN_STALE_SECONDS:
                        screens.append(
                            Tile(
                                (p.user_id, track.source),
                                f"{p.name} (screen)",
                                track.frame,
                                track.frame_id,
                            )
                        )
                elif camera is None and live and t - track.frame_at < CAMERA_STALE_SECONDS:
                    camera = track
            if camera is not None:
                tiles.append(Tile((p.user_id, "camera"), p.name, camera.frame, camera.frame_id))
            else:
                tiles.append(Tile((p.user_id, "camera"), p.name))
        main = None
        if screens:
            main = screens[0].key
            tiles = screens + tiles
        elif self.settings.layout == "speaker" and tiles:
            speaker = self._speaker if self._speaker in present_ids else people[0].user_id
            main = (speaker, "camera")
        assert self._compositor is not None
        return self._compositor.compose(tiles, self.settings.layout, main)

    def set_layout(self, layout: str) -> None:
        """Switches the running composite to another layout from its next picture on
        (not between video and audio only: the file's streams are fixed)."""
        if (layout == "audio") != self.audio_only:
            raise ValueError("a recording cannot switch between video and audio only")
        # One reference swap: the compositing thread reads ``settings`` once per picture.
        self.settings = self.settings.model_copy(update={"layout": layout})

    def _update_speaker(self, t: float, present: set[str]) -> None:
        if self._speaker_manual in present:
            self._speaker = self._speaker_manual
            return
        if self._speaker is not None and self._speaker not in present:
            self._stage.forget(self._speaker)
        levels: dict[str, float] = {}
        for track in self._tracks.values():
            if track.kind == "audio" and track.user_id in present and t - track.level_at < 0.5:
                levels[track.user_id] = max(levels.get(track.user_id, 0.0), track.level)
        self._speaker = self._stage.update(levels, t)

    # ----------------------------------------------------------------- raw mode

    def _open_raw(self, track: _Track, pkt: _Packet) -> None:
        assert self.id is not None and self.path is not None
        try:
            track.raw = RawTrackWriter.open(
                self.path.parent, self.id, pkt.user_id, pkt.source, pkt.kind, pkt.data
            )
        except Exception as exc:  # raw files are a bonus: never stop the composite for them
            log.warning("raw track %s/%s/%s: %s", pkt.user_id, pkt.source, pkt.kind, exc)
            return
        self._raw_files.append(
            {
                "user_id": pkt.user_id,
                "source": pkt.source,
                "kind": pkt.kind,
                "file": track.raw.path.name,
            }
        )

    # ----------------------------------------------------------------- metadata

    def metadata(self) -> dict[str, Any]:
        """The sidecar's content: what a recordings list shows."""
        assert self._start_utc is not None and self.id is not None and self.path is not None
        s = self.settings
        end = self._stop_at if self.state in ("stopped", "error") else None

        def stamp(offset: float | None) -> str | None:
            if offset is None or self._start_utc is None:
                return None
            return (self._start_utc + timedelta(seconds=offset)).isoformat().replace("+00:00", "Z")

        participants = [
            {
                "user_id": p.user_id,
                "name": p.name,
                "sessions": [
                    {
                        "joined": stamp(max(0.0, session.joined)),
                        "left": stamp(session.left),
                        "joined_offset": round(max(0.0, session.joined), 3),
                        "left_offset": None if session.left is None else round(session.left, 3),
                    }
                    for session in p.sessions
                ],
            }
            for p in sorted(list(self._participants.values()), key=lambda p: p.order)
        ]
        size = self.path.stat().st_size if self.path.exists() else 0
        writer = self._writer
        return {
            "id": self.id,
            "type": "composite",
            "room": self.room,
            "file": self.path.name,
            "state": self.state,
            "error": self.error,
            "stop_reason": self.stop_reason,
            "start": stamp(0.0),
            "end": stamp(end),
            "duration": None if end is None else round(end, 3),
            "participants": participants,
            # Everyone who took part, by name, in order of arrival (a rejoin counted once).
            "participantNames": list(dict.fromkeys(p["name"] for p in participants)),
            "thumbnail": self.thumbnail,
            **self.info,
            "layout": s.layout,
            "container": self.container,
            "width": None if self.audio_only else s.width,
            "height": None if self.audio_only else s.height,
            "fps": None if self.audio_only else s.fps,
            "video_codec": writer.video_codec if writer else None,
            "audio_codec": writer.audio_codec if writer else None,
            "size": size,
            "raw_tracks": list(self._raw_files),
        }

    def _write_meta(self) -> None:
        assert self.path is not None
        store_mod.write_sidecar(self.path.parent, self.metadata())


class _DiskLow(Exception):
    pass
