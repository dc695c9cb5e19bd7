"""A recording's thumbnail: a small JPEG of the picture in the middle of the finished file.

Made with PyAV from the file itself (what a player will show), once the file is complete: a
seek to the keyframe before the middle, decoding up to the middle, scaling and one MJPEG
encode. Fragmented MP4 and WebM both seek without reading the whole file, so this costs about
the same for a minute as for an hour.
"""

from __future__ import annotations

import fractions
import logging
import os
from pathlib import Path

import av

log = logging.getLogger("sfu.recording.thumbnail")

WIDTH = 320  # pixels; the height follows the picture's aspect (even, for 4:2:0)
SUFFIX = ".thumb.jpg"  # <id>.thumb.jpg next to <id>.<ext>


def path_for(media: Path) -> Path:
    """Where the thumbnail of the recording whose file is ``media`` goes."""
    return media.with_name(media.stem + SUFFIX)


def middle_frame(path: Path, at: float | None = None) -> av.VideoFrame | None:
    """The first picture shown at or after ``at`` seconds (default: the middle), or None
    for a file without video or without a picture there."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        if at is None:
            at = (container.duration or 0) / 1_000_000 / 2
        base = stream.time_base
        if at > 0 and base is not None:
            # Back to the keyframe before ``at``; then decode forward to it.
            container.seek(int(at / base), stream=stream, backward=True, any_frame=False)
        last: av.VideoFrame | None = None
        for frame in container.decode(stream):
            last = frame
            if frame.time is None or frame.time >= at - 1e-6:
                return frame
        return last  # ``at`` past the last picture: the last one


def encode_jpeg(frame: av.VideoFrame, width: int = WIDTH) -> bytes:
    """``frame`` scaled to ``width`` as a baseline JPEG (full-range 4:2:0, as browsers expect)."""
    height = max(2, round(frame.height * width / frame.width / 2) * 2)
    small = frame.reformat(width=width, height=height, format="yuvj420p")
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuvj420p"
    codec.time_base = fractions.Fraction(1, 1)
    codec.options = {"qmin": "2", "qmax": "6"}  # small pictures: spend a few bytes more
    small.pts = 0
    packets = [*codec.encode(small), *codec.encode(None)]
    return b"".join(bytes(p) for p in packets)


def make(media: Path, at: float | None = None) -> Path | None:
    """Writes ``<id>.thumb.jpg`` for the finished file ``media`` (atomically); returns its
    path, or None when the file has no picture to show. Raises what PyAV raises for a file
    it cannot read."""
    frame = middle_frame(media, at)
    if frame is None:
        return None
    data = encode_jpeg(frame)
    dest = path_for(media)
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, dest)
    return dest
