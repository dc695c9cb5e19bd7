"""The VP8 payload descriptor (RFC 7741 4.2), read and rewritten for one subscriber.

A subscriber that is switched from one simulcast layer to another, or whose upper temporal
layers are dropped, must still see one continuous VP8 stream: picture ids that count up by
one per picture and a TL0PICIDX that counts up by one per base-layer picture, as if a single
encoder had sent it. :class:`Vp8Munger` keeps those two counters for one consumer (LiveKit's
``codecmunger.VP8``, mediasoup's ``VP8::EncodingContext``): offsets that change at a layer
switch and for each dropped picture. A consumer that never switches nor drops keeps offsets
of zero and forwards the publisher's payload object itself (no copy).

Descriptor layout::

    byte 0      X R N S R PID       X: extension byte follows; S: start of a partition
    X byte      I L T K RSV         I: picture id; L: TL0PICIDX; T: TID; K: KEYIDX
    I           M PictureID(7)      M = 1: 15 bits, the low 8 in the next byte
    L           TL0PICIDX(8)
    T or K      TID(2) Y KEYIDX(5)  Y: layer sync (depends only on the base layer)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

_X, _S, _PID = 0x80, 0x10, 0x07
_I, _L, _T, _K = 0x80, 0x40, 0x20, 0x10
# Pictures dropped remembered for late packets (a second of video and more).
_DROPS_KEPT = 64


@dataclass(frozen=True, slots=True)
class Vp8Descriptor:
    """The fields of one packet's payload descriptor, and where they are in the payload."""

    start: bool  # S: the first packet of a partition (with partition 0: of a picture)
    partition: int
    picture_id: int | None
    long_picture_id: bool  # 15 bits (M = 1) rather than 7
    tl0picidx: int | None
    tid: int | None
    layer_sync: bool  # Y
    size: int  # bytes of descriptor before the VP8 payload header
    picture_id_at: int  # offset of the picture id (0: none)
    tl0picidx_at: int  # offset of TL0PICIDX (0: none)

    @property
    def starts_picture(self) -> bool:
        return self.start and self.partition == 0


def parse(payload: bytes) -> Vp8Descriptor | None:
    """The descriptor at the head of an RTP payload, or None if the payload is too short."""
    n = len(payload)
    if n < 1:
        return None
    b0 = payload[0]
    picture_id = tl0 = tid = None
    long_id = sync = False
    pid_at = tl0_at = 0
    pos = 1
    if b0 & _X:
        if n < 2:
            return None
        ext = payload[1]
        pos = 2
        if ext & _I:
            if n <= pos:
                return None
            pid_at = pos
            if payload[pos] & 0x80:
                if n <= pos + 1:
                    return None
                long_id = True
                picture_id = (payload[pos] & 0x7F) << 8 | payload[pos + 1]
                pos += 2
            else:
                picture_id = payload[pos] & 0x7F
                pos += 1
        if ext & _L:
            if n <= pos:
                return None
            tl0_at = pos
            tl0 = payload[pos]
            pos += 1
        if ext & (_T | _K):
            if n <= pos:
                return None
            if ext & _T:
                tid = payload[pos] >> 6
                sync = bool(payload[pos] & 0x20)
            pos += 1
    return Vp8Descriptor(
        start=bool(b0 & _S),
        partition=b0 & _PID,
        picture_id=picture_id,
        long_picture_id=long_id,
        tl0picidx=tl0,
        tid=tid,
        layer_sync=sync,
        size=pos,
        picture_id_at=pid_at,
        tl0picidx_at=tl0_at,
    )


def rewrite(
    payload: bytes, d: Vp8Descriptor, picture_id: int | None, tl0picidx: int | None
) -> bytes:
    """The payload with its picture id and TL0PICIDX replaced, in the fields' own widths."""
    out = bytearray(payload)
    if picture_id is not None and d.picture_id_at:
        if d.long_picture_id:
            out[d.picture_id_at] = 0x80 | (picture_id >> 8 & 0x7F)
            out[d.picture_id_at + 1] = picture_id & 0xFF
        else:
            out[d.picture_id_at] = picture_id & 0x7F
    if tl0picidx is not None and d.tl0picidx_at:
        out[d.tl0picidx_at] = tl0picidx & 0xFF
    return bytes(out)


class Vp8Munger:
    """One consumer's picture id and TL0PICIDX numbering across layer switches and drops.

    Call :meth:`switch` when the consumer's next packet comes from another encoding (it must
    be a keyframe's first packet); :meth:`munge` for every packet of the encoding forwarded,
    with the highest temporal layer wanted. Temporal layers go down at once and up only at a
    picture that may be decoded from the base layer alone (Y bit, or TID 0).

    Packets of a picture dropped for its temporal layer are dropped alike, and the pictures
    after it are renumbered to close the gap. A late packet (reordered, or retransmitted by
    the publisher: ``late=True``) changes nothing: it is dropped if its picture was, and
    otherwise numbered as its picture was, before the drops that came after it.
    """

    __slots__ = (
        "_pid_offset",
        "_tl0_offset",
        "_last_pid",
        "_last_tl0",
        "_last_in_pid",
        "_dropping",
        "_tid_limit",
        "_resync",
        "_dropped_pids",
        "switches",
        "dropped_pictures",
    )

    def __init__(self) -> None:
        self._pid_offset = 0
        self._tl0_offset = 0
        self._last_pid: int | None = None  # the last picture id sent (output numbering)
        self._last_tl0: int | None = None
        self._last_in_pid: int | None = None  # the picture the last packet belonged to
        self._dropping = False  # that picture is being dropped
        self._tid_limit = 0xFF  # the temporal layers now forwarded (up to and including)
        self._resync = False
        self._dropped_pids: deque[int] = deque(maxlen=_DROPS_KEPT)  # the publisher's ids
        self.switches = 0
        self.dropped_pictures = 0

    def switch(self) -> None:
        """The next packet starts another encoding: its numbers follow on from the last sent."""
        self._resync = True
        self._last_in_pid = None
        self._dropping = False
        self._dropped_pids.clear()
        self.switches += 1

    @property
    def temporal_layer(self) -> int:
        return self._tid_limit

    def munge(self, payload: bytes, max_tid: int = 0xFF, late: bool = False) -> bytes | None:
        """The payload to send (the publisher's own object when nothing changes), or None to
        drop the packet (its picture's temporal layer is not forwarded)."""
        d = parse(payload)
        if d is None or d.picture_id is None:
            return payload  # no picture id: nothing to keep continuous
        pid_mask = 0x7FFF if d.long_picture_id else 0x7F
        if late and not self._resync:
            return self._late(payload, d, pid_mask)
        if self._resync:
            self._resync = False
            last_pid = self._last_pid if self._last_pid is not None else d.picture_id - 1
            self._pid_offset = (last_pid + 1 - d.picture_id) & 0x7FFF
            if d.tl0picidx is not None:
                last_tl0 = self._last_tl0 if self._last_tl0 is not None else d.tl0picidx - 1
                self._tl0_offset = (last_tl0 + 1 - d.tl0picidx) & 0xFF
        if d.picture_id != self._last_in_pid:  # a new picture: forward it or not, whole
            self._last_in_pid = d.picture_id
            tid = d.tid if d.tid is not None else 0
            if max_tid < self._tid_limit:
                self._tid_limit = max_tid  # down at once
            elif max_tid > self._tid_limit and (d.layer_sync or tid == 0):
                self._tid_limit = max_tid  # up where the decoder can follow
            self._dropping = tid > self._tid_limit
            if self._dropping:
                self._pid_offset = (self._pid_offset - 1) & 0x7FFF
                self._dropped_pids.append(d.picture_id)
                self.dropped_pictures += 1
        if self._dropping:
            return None
        pid = (d.picture_id + self._pid_offset) & pid_mask
        tl0 = None if d.tl0picidx is None else (d.tl0picidx + self._tl0_offset) & 0xFF
        self._last_pid = pid
        if tl0 is not None:
            self._last_tl0 = tl0
        if pid == d.picture_id and tl0 == d.tl0picidx:
            return payload
        return rewrite(payload, d, pid, tl0)

    def _late(self, payload: bytes, d: Vp8Descriptor, pid_mask: int) -> bytes | None:
        pid_in = d.picture_id
        assert pid_in is not None
        if pid_in == self._last_in_pid:
            later = 0
            if self._dropping:
                return None
        else:
            dropped = self._dropped_pids
            tid = d.tid if d.tid is not None else 0
            if pid_in in dropped or tid > self._tid_limit:
                return None
            half = pid_mask >> 1
            later = sum(1 for p in dropped if 0 < (p - pid_in) & pid_mask <= half)
        pid = (pid_in + self._pid_offset + later) & pid_mask
        tl0 = None if d.tl0picidx is None else (d.tl0picidx + self._tl0_offset) & 0xFF
        if pid == pid_in and tl0 == d.tl0picidx:
            return payload
        return rewrite(payload, d, pid, tl0)
