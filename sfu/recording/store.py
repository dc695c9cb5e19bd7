"""Recordings on disk: names, JSON sidecars, listing, deletion and retention.

A recording is ``<id>.<ext>`` plus ``<id>.json`` in one directory. Ids match a strict pattern
(letters, digits, ``_`` and ``-``), checked before any path is built, so no id can name a file
outside the directory; and only regular files are read or served, never a symlink planted in
the directory.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import secrets
import stat
import string
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av

from sfu.recording import thumbnail as thumbnail_mod

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,199}")  # fullmatch: no trailing newline
_EXTENSION = re.compile(r"[A-Za-z0-9]{1,10}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_RANDOM_ALPHABET = string.ascii_letters + string.digits
RANDOM_LENGTH = 10  # about 60 bits: ids cannot be guessed from the room and the time


def slug(text: str, limit: int = 64) -> str:
    """A file-name-safe form of a room or user id."""
    return (_UNSAFE.sub("_", text).strip("_-") or "x")[:limit]


def valid_id(recording_id: str) -> bool:
    """True only for ids the store could have made."""
    return isinstance(recording_id, str) and bool(ID_PATTERN.fullmatch(recording_id))


def new_id(directory: Path, room: str, start: datetime, ext: str) -> str:
    """``<room>-<YYYYMMDDTHHMMSSZ>-<random letters and digits>``, not taken in ``directory``.

    The room and the time stay readable; the random part keeps a room's recordings from being
    found by trying the seconds of a day.
    """
    base = f"{slug(room)}-{start.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    while True:
        random = "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(RANDOM_LENGTH))
        candidate = f"{base}-{random}"
        if not any(os.path.lexists(directory / f"{candidate}.{e}") for e in (ext, "json")):
            return candidate


def regular_file(path: Path) -> os.stat_result | None:
    """``lstat`` of ``path`` if it is a regular file (not a symlink, not a directory)."""
    try:
        info = path.lstat()
    except (OSError, ValueError):
        return None
    return info if stat.S_ISREG(info.st_mode) else None


def write_sidecar(directory: Path, meta: dict[str, Any]) -> None:
    """Write ``<id>.json`` atomically (a crash leaves the old or the new one, never half)."""
    path = directory / f"{meta['id']}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, path)


class RecordingStore:
    """The recordings in one directory.

    Args:
        directory: where recordings live.
        retention_days: delete recordings that ended longer ago than this (0: keep).
        max_total_mb: delete the oldest while the total is above this (0: no cap).
        active: ids still being written; never deleted by retention, shown as recording.
        live: a recording's live ``status`` (and ``progress``, ``duration``) while its
            recorder runs, by id; None for one no recorder of this process holds.
    """

    def __init__(
        self,
        directory: Path | str,
        retention_days: float = 0,
        max_total_mb: int = 0,
        active: set[str] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.retention_days = retention_days
        self.max_total_mb = max_total_mb
        self.active: set[str] = active if active is not None else set()
        self.live: Callable[[str], dict[str, Any] | None] = lambda recording_id: None

    @classmethod
    def from_settings(cls, settings: Any) -> RecordingStore:
        return cls(settings.directory, settings.retention_days, settings.max_total_mb)

    def _read(self, path: Path) -> dict[str, Any] | None:
        if regular_file(path) is None:
            return None  # a symlinked sidecar could describe (and reach) anything
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("id") != path.stem or not valid_id(path.stem):
            return None
        media = self._media_path(meta)
        if media is None:
            return None
        info = regular_file(media)
        meta["size"] = info.st_size if info is not None else 0
        if meta.get("state") == "recording" and meta["id"] not in self.active:
            # Written by a process that died: the fragments on disk are still playable.
            meta["state"] = "interrupted"
        meta.update(status_of(meta, meta["id"] in self.active))
        meta.update(self.live(meta["id"]) or {})
        return meta

    def _media_path(self, meta: dict[str, Any]) -> Path | None:
        name = meta.get("file")
        if not isinstance(name, str) or "/" in name or "\\" in name:
            return None
        stem, dot, ext = name.rpartition(".")
        if not dot or stem != meta["id"] or not _EXTENSION.fullmatch(ext):
            return None
        return self.directory / name

    def list(self) -> list[dict[str, Any]]:
        """Every recording's metadata, newest first."""
        if not self.directory.is_dir():
            return []
        items = [m for p in self.directory.glob("*.json") if (m := self._read(p)) is not None]
        items.sort(key=lambda m: m.get("start") or "", reverse=True)
        return items

    def get(self, recording_id: str) -> dict[str, Any] | None:
        """One recording's metadata, or None (also for ids that are not valid)."""
        if not valid_id(recording_id):
            return None
        return self._read(self.directory / f"{recording_id}.json")

    def file_path(self, recording_id: str) -> Path | None:
        """The media file of a recording, if it exists."""
        meta = self.get(recording_id)
        if meta is None:
            return None
        path = self._media_path(meta)
        return path if path is not None and regular_file(path) is not None else None

    def thumbnail_path(self, recording_id: str) -> Path | None:
        """A recording's thumbnail JPEG, once made (sfu/recording/thumbnail.py)."""
        meta = self.get(recording_id)
        media = self._media_path(meta) if meta is not None else None
        if meta is None or media is None:
            return None
        path = thumbnail_mod.path_for(media)
        if meta.get("thumbnail") != path.name:  # named in the sidecar once complete
            return None
        return path if regular_file(path) is not None else None

    def raw_track_path(self, recording_id: str, index: int) -> Path | None:
        """The file of a recording's raw track number ``index`` (see ``raw_tracks``)."""
        meta = self.get(recording_id)
        tracks = (meta or {}).get("raw_tracks") or []
        if not 0 <= index < len(tracks) or not isinstance(tracks[index], dict):
            return None
        name = tracks[index].get("file")
        if not isinstance(name, str) or not name.startswith(f"{recording_id}-raw-"):
            return None
        stem, dot, ext = name.rpartition(".")
        if not dot or not valid_id(stem) or not _EXTENSION.fullmatch(ext):
            return None
        path = self.directory / name
        return path if regular_file(path) is not None else None

    def delete(self, recording_id: str) -> bool:
        """Remove a recording (file, sidecar and its raw tracks). False if unknown or active."""
        meta = self.get(recording_id)
        if meta is None or recording_id in self.active:
            return False
        media = self._media_path(meta)
        for raw in meta.get("raw_tracks") or []:
            name = raw.get("file") if isinstance(raw, dict) else None
            if (
                isinstance(name, str)
                and name.startswith(f"{recording_id}-raw-")
                and valid_id(name.rpartition(".")[0])
            ):
                (self.directory / name).unlink(missing_ok=True)
        if media is not None:
            thumbnail_mod.path_for(media).unlink(missing_ok=True)
            media.unlink(missing_ok=True)
        (self.directory / f"{recording_id}.json").unlink(missing_ok=True)
        return True

    def recover(self) -> builtins.list[str]:
        """Close the books on recordings whose writer died (call at start-up).

        Their sidecar still says ``recording``: it becomes ``interrupted``, with the duration
        that is playable (fragmented MP4 keeps everything up to the last fragment) and the
        matching end time. Returns the ids recovered.
        """
        recovered: list[str] = []
        if not self.directory.is_dir():
            return recovered
        for path in self.directory.glob("*.json"):
            meta = self._read(path)
            if meta is None or meta.get("state") != "interrupted" or meta["id"] in self.active:
                continue
            media = self._media_path(meta)
            duration = probe_duration(media) if media is not None else 0.0
            meta["duration"] = round(duration, 3)
            start = _timestamp(meta.get("start"))
            if start:
                end = datetime.fromtimestamp(start + duration, UTC)
                meta["end"] = end.isoformat().replace("+00:00", "Z")
            meta["stop_reason"] = meta.get("stop_reason") or "interrupted"
            write_sidecar(self.directory, meta)
            recovered.append(meta["id"])
        return recovered

    def total_bytes(self) -> int:
        return sum(m["size"] for m in self.list())

    def apply_retention(self, now: float | None = None) -> builtins.list[str]:
        """Delete what the retention settings say must go; returns the ids deleted."""
        now = time.time() if now is None else now
        deleted: list[str] = []
        items = [m for m in self.list() if m["id"] not in self.active]
        if self.retention_days > 0:
            limit = now - self.retention_days * 86400
            for meta in list(items):
                if _timestamp(meta.get("end") or meta.get("start")) < limit:
                    if self.delete(meta["id"]):
                        deleted.append(meta["id"])
                    items.remove(meta)
        if self.max_total_mb > 0:
            cap = self.max_total_mb * 1024 * 1024
            total = sum(m["size"] for m in self.list())
            for meta in sorted(items, key=lambda m: m.get("start") or ""):
                if total <= cap:
                    break
                if self.delete(meta["id"]):
                    deleted.append(meta["id"])
                    total -= meta["size"]
        return deleted


def status_of(meta: dict[str, Any], active: bool) -> dict[str, Any]:
    """What a recordings list shows of a recording no recorder of this process tells about
    (``RecordingStore.live`` does for the others): ``recording`` while it is written,
    ``finishing`` while it is being completed (the finalize command, a thumbnail), ``ready``
    (an interrupted one's fragments play too) or ``failed``."""
    state = meta.get("state")
    if state == "error":
        status = "failed"
    elif state == "recording":
        status = "recording"
    elif active:
        status = "finishing"
    else:
        status = "ready"
    return {"status": status, "progress": None}


def probe_duration(path: Path) -> float:
    """Seconds playable in a media file (0 if it cannot be read). Reads headers only."""
    try:
        with av.open(str(path)) as container:
            return (container.duration or 0) / 1_000_000
    except (OSError, av.error.FFmpegError):
        return 0.0


def _timestamp(iso: str | None) -> float:
    if not iso:
        return 0.0
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
