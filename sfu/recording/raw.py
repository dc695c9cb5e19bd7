"""Raw mode: each track remuxed, without decoding, into its own file on the same timeline."""

from __future__ import annotations

import fractions
from pathlib import Path

import av

from sfu.media.rtp.codecs import vp8_size
from sfu.recording import store as store_mod

_MS = fractions.Fraction(1, 1000)


class RawTrackWriter:
    """One producer's packets into ``<recording id>-<user>-<source>-<kind>.<ext>``.

    VP8 video and Opus audio go to WebM; H.264 (Annex B as forwarded) to MPEG-TS, which needs
    no codec extradata. Timestamps are the composite's timeline in milliseconds, so the raw
    files line up with each other and with the composite.
    """

    def __init__(self, path: Path, out: av.container.OutputContainer, stream: av.stream.Stream):
        self.path = path
        self._out = out
        self._stream = stream
        self._last_pts = -1
        self._closed = False

    @classmethod
    def open(
        cls, directory: Path, parent_id: str, user_id: str, source: str, kind: str, first: bytes
    ) -> RawTrackWriter:
        stem = "-".join(
            [parent_id, "raw", store_mod.slug(user_id, 40), store_mod.slug(source, 20), kind]
        )
        stream: av.stream.Stream
        if kind == "audio":
            path, fmt = directory / f"{stem}.webm", "webm"
            out = av.open(str(path), "w", format=fmt)
            audio = out.add_stream("libopus", rate=48000)
            audio.layout = "stereo"
            stream = audio
        else:
            h264 = first[:3] == b"\x00\x00\x01" or first[:4] == b"\x00\x00\x00\x01"
            path, fmt = (
                (directory / f"{stem}.ts", "mpegts")
                if h264
                else (directory / f"{stem}.webm", "webm")
            )
            out = av.open(str(path), "w", format=fmt)
            video = out.add_stream("libx264" if h264 else "libvpx", rate=30)
            width, height = vp8_size(first) or (640, 480)
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            stream = video
        stream.time_base = _MS
        return cls(path, out, stream)

    def write(self, data: bytes, at: float, keyframe: bool) -> None:
        """Mux one encoded frame shown at timeline second ``at`` (unchanged bytes)."""
        pts = max(round(at * 1000), self._last_pts + 1)
        self._last_pts = pts
        packet = av.Packet(data)
        packet.pts = packet.dts = pts
        packet.time_base = _MS
        packet.is_keyframe = keyframe
        packet.stream = self._stream
        self._out.mux(packet)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._out.close()
