"""A producer's missing packets: which numbers never came, and when they count as lost.

The publisher retransmits what a NACK asks for (RTX); a number still missing after the
jitter timeout is lost for good, and the subscribers whose stream had that hole move on to
the next keyframe.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .seqmap import MAX_GAP


class LossTracker:
    """Follows one stream's sequence numbers as they arrive."""

    __slots__ = ("next_seq", "missing", "lost", "_clock")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.next_seq: int | None = None
        self.missing: dict[int, float] = {}  # number -> when it was missed
        self.lost = 0  # numbers expired unrecovered
        self._clock = clock

    def add(self, seq: int) -> bool | None:
        """Notes an arrival: True if it is the newest packet, False if it fills a hole (late,
        or retransmitted after a NACK), None if it came before (a duplicate: a publisher
        pads its uplink with retransmissions nobody asked for, and a subscriber who lost a
        packet asks the server's history, so it is never forwarded again)."""
        expected = self.next_seq
        if expected is None or seq == expected:
            self.next_seq = (seq + 1) & 0xFFFF
            return True
        ahead = (seq - expected) & 0xFFFF
        if ahead < 0x8000:
            if ahead <= MAX_GAP:  # a larger jump is a restarted sender, not a loss
                now = self._clock()
                for i in range(ahead):
                    self.missing.setdefault((expected + i) & 0xFFFF, now)
            self.next_seq = (seq + 1) & 0xFFFF
            return True
        if seq in self.missing:  # retransmitted after a NACK
            del self.missing[seq]
            return False
        if 0x10000 - ahead > MAX_GAP:  # the numbering started over further back
            self.next_seq = (seq + 1) & 0xFFFF
            return True
        return None  # a duplicate (or from before a hole given up as lost)

    def expire(self, timeout: float) -> list[int]:
        """Forgets numbers missing for longer than ``timeout`` seconds; returns them."""
        if not self.missing:
            return []
        now = self._clock()
        old = [s for s, t in self.missing.items() if now - t > timeout]
        for seq in old:
            del self.missing[seq]
        self.lost += len(old)
        return old
