"""Server-side recording: a composite of a room (layout, names, mixed audio) into one file.

Layers: ``recorder`` (consumes the router's packets, one worker thread per recording),
``compositor`` (layouts, drawing), ``mixer`` (audio), ``writer`` (PyAV container), ``raw``
(per-track remux), ``store`` (files, metadata, retention), ``http`` (REST handlers).
"""

from sfu.recording.recorder import Recorder
from sfu.recording.store import RecordingStore

__all__ = ["Recorder", "RecordingStore"]
