"""The output container, via PyAV: H.264 + AAC in fragmented MP4, or VP8 + Opus in WebM; audio
only, Opus in Ogg or AAC in fragmented M4A."""

from __future__ import annotations

import fractions
from pathlib import Path
from typing import Literal

import av
import numpy as np

from sfu.recording.mixer import RATE

# Fragmented MP4: every keyframe starts a fragment that is complete on disk, so a crash
# (SIGKILL, power loss) leaves a file playable up to the last fragment written.
# flush_packets hands every write to the OS at once: a killed process loses no buffered bytes.
MP4_OPTIONS = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}

# Audio only in MP4 (M4A): every audio packet is a keyframe, so fragments are cut by time
# instead (frag_duration, in microseconds; set from keyframe_seconds).
M4A_OPTIONS = {"movflags": "empty_moov+default_base_moof", "flush_packets": "1"}
# Ogg is written page by page, each complete on disk: a killed process loses the pages the
# muxer still holds (the one being filled and the one before), so pages are short: 250 ms
# costs about 1.5 kbit/s of page headers.
OGG_OPTIONS = {"flush_packets": "1", "page_duration": "250000"}

# Literal names: PyAV's add_stream then types the streams as video and audio.
CODECS: dict[str, tuple[Literal["libx264", "libvpx"] | None, Literal["aac", "libopus"]]] = {
    "mp4": ("libx264", "aac"),
    "webm": ("libvpx", "libopus"),
    "ogg": (None, "libopus"),
    "m4a": (None, "aac"),
}
EXTENSIONS = {"mp4": "mp4", "webm": "webm", "ogg": "ogg", "m4a": "m4a"}
_FORMATS = {"mp4": "mp4", "webm": "webm", "ogg": "ogg", "m4a": "ipod"}  # FFmpeg's muxer names


class Writer:
    """Encodes composed frames and mixed audio into one file (no video for ogg and m4a).

    Video frame ``n`` is shown at ``n / fps``; audio sample ``k`` at ``k / 48000``: both are
    positions on the recording's single timeline, so the file's A/V sync is the timeline's.
    """

    def __init__(
        self,
        path: Path,
        container: str = "mp4",
        width: int = 1280,
        height: int = 720,
        fps: int = 30,
        crf: int = 23,
        video_bitrate_kbps: int | None = None,
        preset: str = "veryfast",
        audio_bitrate_kbps: int = 128,
        keyframe_seconds: float = 1.0,
        threads: int = 2,
    ) -> None:
        self.path = path
        self.container_name = container
        self.fps = fps
        video_codec, audio_codec = CODECS[container]
        self.video_codec, self.audio_codec = video_codec, audio_codec
        chunk_us = str(round(keyframe_seconds * 1_000_000))
        options = {
            "mp4": MP4_OPTIONS,
            "webm": {"flush_packets": "1"},
            "m4a": {**M4A_OPTIONS, "frag_duration": chunk_us},
            "ogg": OGG_OPTIONS,
        }[container]
        self._out = av.open(str(path), mode="w", format=_FORMATS[container], options=options)
        self._video: av.VideoStream | None = None
        try:
            if video_codec is not None:
                self._video = self._add_video(
                    video_codec,
                    width,
                    height,
                    fps,
                    crf,
                    video_bitrate_kbps,
                    preset,
                    keyframe_seconds,
                    threads,
                )
            a = self._out.add_stream(audio_codec, rate=RATE)
            a.layout = "mono"
            a.format = "fltp" if audio_codec == "aac" else "flt"
            a.bit_rate = audio_bitrate_kbps * 1000
            a.codec_context.time_base = fractions.Fraction(1, RATE)
            self._audio = a
            if self._video is not None:
                self._video.codec_context.open()
            self._audio.codec_context.open()
        except BaseException:
            self._out.close()
            raise
        self.audio_frame_size = self._audio.codec_context.frame_size or 960
        self._audio_format = self._audio.codec_context.format.name
        # AAC puts 1024 priming samples in front of its output (packet pts = input pts - 1024)
        # and fragmented MP4 has no edit list to hide them: start the audio at timeline sample
        # 1024 so no timestamp is negative (the muxer would shift the streams apart) and every
        # sample decodes at its timeline position. Matroska and Ogg carry Opus pre-skip themselves.
        self.audio_skip = 1024 if audio_codec == "aac" else 0
        self._closed = False

    def _add_video(
        self,
        codec: Literal["libx264", "libvpx"],
        width: int,
        height: int,
        fps: int,
        crf: int,
        video_bitrate_kbps: int | None,
        preset: str,
        keyframe_seconds: float,
        threads: int,
    ) -> av.VideoStream:
        gop = max(1, round(fps * keyframe_seconds))
        v = self._out.add_stream(codec, rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.codec_context.time_base = fractions.Fraction(1, fps)
        v.codec_context.gop_size = gop
        # Fewer frame threads than one per core: less CPU in all (about 10% less measured here).
        v.codec_context.thread_count = threads
        opts: dict[str, object]  # as PyAV types Stream.options (the values are strings)
        if codec == "libx264":
            opts = {
                "preset": preset,
                # The canvas is BT.601 (what swscale produces): say so, or players guess 709.
                # No B-frames: composition offsets would shift the video against the audio in
                # players that ignore edit lists, and they hold frames back from fragments.
                "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:"
                "colormatrix=smpte170m:colorprim=smpte170m:transfer=smpte170m",
            }
            if video_bitrate_kbps:
                v.bit_rate = video_bitrate_kbps * 1000
            else:
                opts["crf"] = str(crf)
        else:
            kbps = video_bitrate_kbps or 2000
            v.bit_rate = kbps * 1000
            opts = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        v.options = opts
        return v

    @property
    def has_video(self) -> bool:
        return self._video is not None

    def write_video(self, frame: av.VideoFrame, index: int) -> None:
        """Encode a picture shown at ``index / fps``."""
        assert self._video is not None, "an audio-only file has no video"
        frame.pts = index
        frame.time_base = fractions.Fraction(1, self.fps)
        for packet in self._video.encode(frame):
            self._out.mux(packet)

    def write_audio(self, samples: np.ndarray, position: int) -> None:
        """Encode one codec frame of mono float samples from timeline sample ``position``.

        The first ``position`` must be ``audio_skip`` (see there).
        """
        frame = av.AudioFrame.from_ndarray(
            samples.reshape(1, -1).astype(np.float32), format=self._audio_format, layout="mono"
        )
        frame.sample_rate = RATE
        frame.pts = position
        frame.time_base = fractions.Fraction(1, RATE)
        for packet in self._audio.encode(frame):
            self._out.mux(packet)

    def close(self, flush: bool = True) -> None:
        """Drain the encoders (unless failing) and finish the file."""
        if self._closed:
            return
        self._closed = True
        try:
            if flush:
                for stream in (self._video, self._audio):
                    for packet in stream.encode(None) if stream is not None else ():
                        self._out.mux(packet)
        finally:
            self._out.close()
