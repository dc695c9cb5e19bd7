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
    mapped (the first one was delayed), and re-anchored on a jump (a publisher restarting its
    stream). Audio and video of a publisher are mapped the same way, so they keep the relation
    their arrival times give them.
    """

    JUMP = 1.0  # seconds of disagreement with arrival time treated as a discontinuity
    WRAP = 2**32

    def __init__(self) -> None:
        self.offset: float | None = None  # timeline - media
        self._last_pts: int | None = None
        self._unwrap = 0

    def unwrap(self, pts: int) -> int:
        """Undo 32-bit RTP timestamp wrap-around."""
        if self._last_pts is not None:
            if pts + self._unwrap < self._last_pts - self.WRAP // 2:
                self._unwrap += self.WRAP
            elif pts + self._unwrap > self._last_pts + self.WRAP // 2 and self._unwrap:
                self._unwrap -= self.WRAP
        self._last_pts = pts + self._unwrap
        return self._last_pts

    def map(self, media: float, arrival: float) -> float:
        """Timeline time of a packet with media time ``media`` that arrived at ``arrival``."""
        if self.offset is None or abs(media + self.offset - arrival) > self.JUMP:
            self.offset = arrival - media
        elif media + self.offset > arrival:
            self.offset = arrival - media
        return media + self.offset
