"""Server-side recording: a composite of a room (layout, names, mixed audio) into one file.

Layers: ``recorder`` (consumes the router's packets, one worker thread per recording),
``compositor`` (layouts, drawing), ``text`` (names with FreeType and the installed fonts),
``font`` (the bitmap fallback), ``mixer`` (audio), ``writer`` (PyAV container), ``raw``
(per-track remux), ``thumbnail`` (a JPEG from the middle of a finished file), ``store``
(files, metadata, retention), ``rooms`` (a room's recordings),
``webhook`` and ``finalize`` (telling the operator's system that a file is ready).
"""

from sfu.recording.recorder import Recorder
from sfu.recording.store import RecordingStore

__all__ = ["Recorder", "RecordingStore"]
