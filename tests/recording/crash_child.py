"""Child process for the crash tests: records in real time until killed.

Arguments: directory, seconds before printing the file's path, and an audio format (ogg or
m4a) for an audio-only recording.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sfu.recording import Recorder
from sfu.settings import RecordingSettings
from tests.recording.recsynth import RED, feeds, opus_frames, tone, vp8_frames


def main() -> None:
    directory, ready_after = Path(sys.argv[1]), float(sys.argv[2])
    extra = {"layout": "audio", "audio_format": sys.argv[3]} if len(sys.argv) > 3 else {}
    settings = RecordingSettings(directory=directory, width=320, height=180, fps=30, **extra)
    items = feeds("a", vp8_frames(lambda t: RED, 0.0, 8.0), "video") + feeds(
        "a", opus_frames(tone(440), 0.0, 8.0), "audio"
    )
    items.sort(key=lambda f: f.at)
    rec = Recorder("crash", settings)
    rec.start()
    rec.participant_joined("a", "Ada")
    start = time.monotonic()
    told = False
    for f in items:
        delay = start + f.at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        rec.on_packet(f.user_id, f.source, f.kind, f.packet, f.keyframe)
        if not told and f.at >= ready_after:
            print(rec.path, flush=True)
            told = True
    time.sleep(60)


if __name__ == "__main__":
    main()
