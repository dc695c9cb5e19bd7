"""A subscriber's numbering of one producer's packets (mediasoup's ``SeqManager``).

A subscriber sees one stream with its own random sequence-number and timestamp origins, in
which numbers stay contiguous however the producer's stream is cut: a subscriber starts
(and restarts after a loss or an overflow) at a keyframe, so the producer's packets between
are never sent, and the numbering closes the gap instead of showing a loss.

A packet the consumer does not forward (a picture of a temporal layer it drops) is
:meth:`SeqMap.drop`-ped: the numbers after it close up, and a late packet from before the
drop (reordered, or the publisher's retransmission) still gets the number it would have
had, as mediasoup's ``SeqManager`` keeps its dropped set.

All arithmetic is modulo 2**16 (sequence numbers) and 2**32 (timestamps), RFC 3550.
"""

from __future__ import annotations

from collections import deque

# A packet this far behind the newest is not late: the producer's numbering started over.
MAX_GAP = 1000
# The start follows a quarter of the number space behind the newest packet, so "before the
# start" keeps its meaning as the numbers wrap.
_START_LAG = 0x4000
# Drops remembered for late packets: more than a NACK history's worth of packets back is
# too late to matter (the subscriber gave the packet up).
_DROPS_KEPT = 128


def seq_after(a: int, b: int) -> bool:
    """Whether 16-bit sequence number ``a`` comes at or after ``b`` (RFC 3550 wrap)."""
    return (a - b) & 0xFFFF < 0x8000


class SeqMap:
    """Maps a producer's (sequence number, timestamp) to a subscriber's.

    ``next_seq`` is the subscriber's next number; ``start`` the producer's number where the
    current segment began (packets before it were never meant for this subscriber);
    ``segment_start`` the subscriber's number where it began; ``last_timestamp`` the
    subscriber's timestamp of its newest packet.
    """

    __slots__ = (
        "next_seq",
        "offset",
        "start",
        "segment_start",
        "ts_offset",
        "last_timestamp",
        "started",
        "_ts_origin",
        "_dropped",
    )

    def __init__(self, first_seq: int, ts_origin: int) -> None:
        self.next_seq = first_seq & 0xFFFF
        self.segment_start = self.next_seq
        self.offset = 0
        self.start = 0
        self.ts_offset = 0
        self.started = False  # no segment yet: only restart() begins one
        self._ts_origin = ts_origin & 0xFFFFFFFF  # the subscriber's first timestamp
        self.last_timestamp = 0
        # The producer's numbers dropped in this segment, oldest first.
        self._dropped: deque[int] = deque(maxlen=_DROPS_KEPT)

    def restart(self, seq_in: int, ts_in: int) -> tuple[int, int]:
        """A new segment begins with the producer's packet (``seq_in``, ``ts_in``): it gets
        the next number, so the skipped packets leave no gap. Returns its (seq, timestamp)."""
        self.offset = (self.next_seq - seq_in) & 0xFFFF
        self.start = seq_in
        self.segment_start = self.next_seq
        self._dropped.clear()
        if not self.started:
            self.ts_offset = (self._ts_origin - ts_in) & 0xFFFFFFFF
            self.started = True
        return self._advance(seq_in, ts_in)

    def switch(self, seq_in: int, ts_in: int, ts_step: int) -> tuple[int, int]:
        """Like :meth:`restart`, for a packet of another encoding (another simulcast layer:
        its own numbers and timestamp origin): the numbers follow on without a gap, and its
        timestamp comes ``ts_step`` after the last one sent (the time since, in the
        clock's units), so the subscriber's stream shows neither a jump nor a step back."""
        if self.started:
            self.ts_offset = (self.last_timestamp + ts_step - ts_in) & 0xFFFFFFFF
        return self.restart(seq_in, ts_in)

    def in_order(self, seq_in: int, ts_in: int) -> tuple[int, int] | None:
        """The common case: the packet right after the newest. Its (seq, timestamp), or None
        (then :meth:`map` decides). Only once a segment has begun (:meth:`restart`)."""
        seq = (seq_in + self.offset) & 0xFFFF
        if seq != self.next_seq:
            return None
        self.next_seq = (seq + 1) & 0xFFFF
        timestamp = (ts_in + self.ts_offset) & 0xFFFFFFFF
        self.last_timestamp = timestamp
        if (seq_in - self.start) & 0xFFFF > _START_LAG:
            self.start = (seq_in - _START_LAG) & 0xFFFF
        return seq, timestamp

    def map(self, seq_in: int, ts_in: int) -> tuple[int, int] | None:
        """Any packet of the current segment: its (seq, timestamp), or None if it came from
        before the segment (the subscriber never expects it). A packet far behind the
        newest means the producer's numbering started over: a new segment follows on."""
        if not self.started:
            return None
        behind = (self.next_seq - 1 - self.offset - seq_in) & 0xFFFF
        if MAX_GAP < behind < 0x8000:
            self.offset = (self.next_seq - seq_in) & 0xFFFF
            self.start = seq_in
            self._dropped.clear()
        elif not seq_after(seq_in, self.start):
            return None
        elif self._dropped and behind < 0x8000:
            return self._late(seq_in, ts_in)
        return self._advance(seq_in, ts_in)

    def newer(self, seq_in: int) -> bool:
        """Whether the producer's ``seq_in`` is newer than every packet mapped or dropped
        (not a late or repeated one)."""
        newest = self.newest_in()
        return seq_in != newest and seq_after(seq_in, newest)

    def drop(self, seq_in: int) -> None:
        """The producer's packet ``seq_in`` (newer than any so far: :meth:`newer`) is not
        forwarded: the next packet takes its number. A hole before it (packets not yet
        arrived) keeps its numbers."""
        if not self.started or not self.newer(seq_in):
            return  # a late packet dropped: its number stays a hole
        self.offset = (self.offset - 1) & 0xFFFF
        self.next_seq = (seq_in + self.offset + 1) & 0xFFFF
        self._dropped.append(seq_in)
        if (seq_in - self.start) & 0xFFFF > _START_LAG:
            self.start = (seq_in - _START_LAG) & 0xFFFF

    def _late(self, seq_in: int, ts_in: int) -> tuple[int, int] | None:
        """A packet older than the newest, after drops: numbered as it was before the drops
        that came after it; None if it is itself dropped, or older than the drops kept."""
        dropped = self._dropped
        if seq_in in dropped:
            return None
        if len(dropped) == dropped.maxlen and seq_after(dropped[0], seq_in):
            return None
        later = sum(1 for d in dropped if seq_after(d, seq_in))
        seq = (seq_in + self.offset + later) & 0xFFFF
        return seq, (ts_in + self.ts_offset) & 0xFFFFFFFF

    def _advance(self, seq_in: int, ts_in: int) -> tuple[int, int]:
        seq = (seq_in + self.offset) & 0xFFFF
        timestamp = (ts_in + self.ts_offset) & 0xFFFFFFFF
        if seq_after(seq, self.next_seq):  # newer than the newest (not a retransmission)
            self.next_seq = (seq + 1) & 0xFFFF
            self.last_timestamp = timestamp
            if (seq_in - self.start) & 0xFFFF > _START_LAG:
                self.start = (seq_in - _START_LAG) & 0xFFFF
        return seq, timestamp

    def newest_in(self) -> int:
        """The producer's number of the newest packet mapped."""
        return (self.next_seq - 1 - self.offset) & 0xFFFF

    def missed(self, lost: list[int]) -> bool:
        """Whether any of the producer's ``lost`` numbers is a hole in this segment (after
        its start, before its newest packet)."""
        newest = self.newest_in()
        start = self.start
        return any(
            seq_after(seq, start) and seq_after(newest, seq) and seq != newest for seq in lost
        )

    def first_of_segment(self, limit: int) -> int:
        """The subscriber's first number of the segment, at most ``limit`` numbers back."""
        back = min((self.next_seq - self.segment_start) & 0xFFFF, limit)
        return (self.next_seq - back) & 0xFFFF
