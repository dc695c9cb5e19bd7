"""Clocks and per-track timestamp mapping onto the recording's one timeline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Clock = Callable[[], float]


class ManualClock:
    """A clock that moves only when told: lets tests record minutes in seconds."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def set(self, value: float) -> None:
        with self._lock:
            self._now = value


def monotonic() -> float:
    return time.monotonic()


class TrackClock:
    """Maps one track's media timestamps (seconds, from RTP pts) to timeline seconds.

    Anchored at the first packet's arrival; moved earlier when a packet arrives sooner than
    mapped (the first one was delayed), and re-anchored on a jump of the media timestamps (a
    publisher restarting its stream). Audio and video of a publisher are mapped the same way,
    so they keep the relation their arrival times give them.
    """

    JUMP = 1.0  # seconds of disagreement treated as a discontinuity
    WRAP = 2**32
    LATE_HOLD = 0.5  # seconds of arrivals later than ``late``: the track's delay grew, follow it

    def __init__(self) -> None:
        self.offset: float | None = None  # timeline - media
        self._last_pts: int | None = None
        self._unwrap = 0
        self._last_media: float | None = None
        self._late_since: float | None = None

    def unwrap(self, pts: int) -> int:
        """Undo 32-bit RTP timestamp wrap-around."""
        if self._last_pts is not None:
            if pts + self._unwrap < self._last_pts - self.WRAP // 2:
                self._unwrap += self.WRAP
            elif pts + self._unwrap > self._last_pts + self.WRAP // 2 and self._unwrap:
                self._unwrap -= self.WRAP
        self._last_pts = pts + self._unwrap
        return self._last_pts

    def map(self, media: float, arrival: float, late: float | None = None) -> float:
        """Timeline time of a packet with media time ``media`` that arrived at ``arrival``.

        ``late``: a packet mapped more than this before its arrival comes too late to be
        used (the recorder's latency). While the media timestamps run on, late packets are a
        stall (a busy server or network): a burst keeps the mapping, so what came in time
        stays in place; only when packets keep coming that late for LATE_HOLD seconds has
        the track's delay grown for good, and the mapping follows it (else the track would be
        lost for the rest of the recording). Without ``late``, a packet more than JUMP late
        re-anchors at once.
        """
        last, self._last_media = self._last_media, media
        behind = arrival - media - self.offset if self.offset is not None else 0.0
        if (
            self.offset is None
            or last is None
            or abs(media - last) > self.JUMP  # the stream restarted (new timestamps)
            or (late is None and behind > self.JUMP)
        ):
            self.offset = arrival - media
            self._late_since = None
        elif behind < 0:  # sooner than mapped: the first packets were delayed
            self.offset = arrival - media
            self._late_since = None
        elif late is not None and behind > late:
            if self._late_since is None:
                self._late_since = arrival
            elif arrival - self._late_since >= self.LATE_HOLD:
                self.offset = arrival - media
                self._late_since = None
        else:
            self._late_since = None
        return media + self.offset
