"""Packets a subscriber was sent, kept for retransmission when it NACKs them (RFC 4585).

A ring of the last ``size`` packets, indexed by sequence number modulo ``size``, as aiortc's
own sender keeps it; a slot holds the packet as sent before SRTP, whose header says which
number it really is (a slot may hold an older packet of the same index).
"""

from __future__ import annotations

import struct

_SEQ = struct.Struct("!H").unpack_from
_SEQ_TS = struct.Struct("!HL").unpack_from


class PacketHistory(dict[int, bytes]):
    """``history[seq % size] = packet``; :meth:`find` checks the number."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def find(self, seq: int) -> bytes | None:
        """The packet sent with number ``seq``, if it is still kept."""
        data = self.get(seq % self.size)
        return data if data is not None and _SEQ(data, 2)[0] == seq else None

    def timestamp(self, seq: int) -> int | None:
        """The RTP timestamp of the packet sent with number ``seq``, if still kept."""
        data = self.get(seq % self.size)
        if data is None:
            return None
        number, timestamp = _SEQ_TS(data, 2)
        return timestamp if number == seq else None
