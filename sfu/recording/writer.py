"""The output container: H.264 + AAC in fragmented MP4, or VP8 + Opus in WebM, via PyAV."""

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

# Literal names: PyAV's add_stream then types the streams as video and audio.
CODECS: dict[str, tuple[Literal["libx264", "libvpx"], Literal["aac", "libopus"]]] = {
    "mp4": ("libx264", "aac"),
    "webm": ("libvpx", "libopus"),
}
EXTENSIONS = {"mp4": "mp4", "webm": "webm"}


class Writer:
    """Encodes composed frames and mixed audio into one file.

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
        options = MP4_OPTIONS if container == "mp4" else {"flush_packets": "1"}
        self._out = av.open(str(path), mode="w", format=container, options=options)
        try:
            gop = max(1, round(fps * keyframe_seconds))
            v = self._out.add_stream(video_codec, rate=fps)
            v.width, v.height, v.pix_fmt = width, height, "yuv420p"
            v.codec_context.time_base = fractions.Fraction(1, fps)
            v.codec_context.gop_size = gop
            # Fewer frame threads than one per core: less CPU in all (about 10% less measured here).
            v.codec_context.thread_count = threads
            opts: dict[str, object]  # as PyAV types Stream.options (the values are strings)
            if container == "mp4":
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
            a = self._out.add_stream(audio_codec, rate=RATE)
            a.layout = "mono"
            a.format = "fltp" if audio_codec == "aac" else "flt"
            a.bit_rate = audio_bitrate_kbps * 1000
            a.codec_context.time_base = fractions.Fraction(1, RATE)
            self._video, self._audio = v, a
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
        # sample decodes at its timeline position. Matroska carries Opus pre-skip itself.
        self.audio_skip = 1024 if audio_codec == "aac" else 0
        self._closed = False

    def write_video(self, frame: av.VideoFrame, index: int) -> None:
        """Encode a picture shown at ``index / fps``."""
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
                    for packet in stream.encode(None):
                        self._out.mux(packet)
        finally:
            self._out.close()
