"""A producer's encoded frames, reassembled from its RTP packets (what the recorder needs).

The router sees one producer's packets in arrival order: reordered, duplicated, retransmitted
late, with losses, 16-bit sequence wraps, 32-bit timestamp wraps, and a publisher that may
restart its numbering. :class:`FrameAssembler` turns them into complete encoded frames, so
the recorder is fed from the same packets as the forwarding consumers.

A video frame is the consecutive sequence numbers from the packet after the previous frame's
last one up to its marker packet (or, defensively, up to a change of timestamp); it comes out
only when every one of them is present, and frames come out in order. The first frame, and
the first after a loss, start at a packet that starts a keyframe (VP8: S bit, partition 0
and a key frame tag; H.264: an IDR or SPS NAL unit, single, in a STAP-A or an FU-A start),
moved back over earlier packets with its timestamp (H.264's SPS and PPS before the IDR).

Loss: a hole is given up when the router's loss tracker declares its number lost for good
(:meth:`FrameAssembler.lost`, fed from ``LossTracker.expire``), or when more than
``max_packets`` packets are held. The frame with the hole is dropped, and frames wait for the
next keyframe (``broken``): a decoder cannot decode past a hole. A jump of more than
``seqmap.MAX_GAP`` numbers either way is a publisher that started its numbering over: held
packets go, and frames wait for a keyframe of the new numbering.

Audio: every packet is a frame, late ones too (the recorder has a latency buffer); only
duplicates are dropped.

Depayloading: VP8 per RFC 7741 (the payload descriptor is stripped, a frame's VP8 payloads
concatenated); H.264 per RFC 6184 into Annex B (a 4-byte start code before every NAL unit:
single NAL units, STAP-A split, FU-A joined under the reconstructed NAL header); Opus and
other audio: the payload is the frame.

Pure: no aiortc, no clock, no I/O. Per packet a few dict lookups, never a sort or a scan of
what is held (that happens once per loss given up or keyframe found).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from ..frames import EncodedFrame
from .codecs import is_keyframe, payload_starts_keyframe
from .seqmap import MAX_GAP, seq_after

_START_CODE = b"\x00\x00\x00\x01"
_H264_STAP_A = 24
_H264_FU_A = 28
# Held packets may span at most this many numbers (a quarter of the space, as seqmap's start
# lag), so "before" and "after" keep their meaning however long a hole stays open.
_SPAN = 0x4000

# seq -> (timestamp, marker, payload)
_Packet = tuple[int, bool, bytes]


def _whole(payloads: list[bytes]) -> bytes | None:  # audio: a packet is a frame
    return b"".join(payloads)


def capture_time(raw_ts: int, report: tuple[float, int] | None, clock_rate: int) -> float | None:
    """When the publisher captured the frame with RTP timestamp ``raw_ts``, in its NTP
    seconds, from its last sender report ``(ntp_seconds, rtp_timestamp)``; None without one.

    The signed 32-bit distance to the report's timestamp, so a frame either side of the
    report, across a timestamp wrap, is placed right.
    """
    if report is None:
        return None
    ntp, rtp = report
    ticks = ((raw_ts - rtp + 0x80000000) & 0xFFFFFFFF) - 0x80000000
    return ntp + ticks / clock_rate


def vp8_depayload(payloads: list[bytes]) -> bytes | None:
    """One VP8 frame from its packets' payloads in order (RFC 7741), or None if malformed.

    Each payload descriptor (X; then I with a 7- or 15-bit picture id, L, T/K) is stripped;
    the first packet must start the frame (S = 1, partition 0).
    """
    parts = []
    for i, p in enumerate(payloads):
        n = len(p)
        if not n:
            return None
        b = p[0]
        if i == 0 and b & 0x17 != 0x10:  # S = 1, PID = 0: else not the frame's start
            return None
        pos = 1
        if b & 0x80:  # X: an extension byte follows
            if n < 2:
                return None
            ext = p[1]
            pos = 2
            if ext & 0x80:  # I: picture id; its M bit says 15 bits
                if n <= pos:
                    return None
                pos += 2 if p[pos] & 0x80 else 1
            if ext & 0x40:  # L: TL0PICIDX
                pos += 1
            if ext & 0x30:  # T or K: one byte TID/Y/KEYIDX
                pos += 1
            if pos > n:
                return None
        parts.append(p[pos:])
    return b"".join(parts)


def h264_depayload(payloads: list[bytes]) -> bytes | None:
    """One H.264 access unit in Annex B from its packets' payloads in order (RFC 6184,
    non-interleaved mode: single NAL units, STAP-A, FU-A), or None if malformed."""
    parts: list[bytes] = []
    in_fu = False  # inside an FU-A NAL unit (its start seen, not its end)
    for p in payloads:
        n = len(p)
        if not n:
            return None
        nal_type = p[0] & 0x1F
        if nal_type == _H264_FU_A:
            if n < 2:
                return None
            header = p[1]
            if header & 0x80:  # S: the NAL header is rebuilt from F/NRI and the type
                if in_fu:
                    return None  # the previous NAL unit never ended
                parts.append(_START_CODE)
                parts.append(bytes((p[0] & 0xE0 | header & 0x1F,)))
                in_fu = True
            elif not in_fu:
                return None  # a fragment whose start we do not have
            parts.append(p[2:])
            if header & 0x40:  # E
                in_fu = False
            continue
        if in_fu:
            return None
        if 0 < nal_type < _H264_STAP_A:
            parts.append(_START_CODE)
            parts.append(p)
        elif nal_type == _H264_STAP_A:
            pos = 1
            while pos < n:
                if pos + 2 > n:
                    return None
                size = p[pos] << 8 | p[pos + 1]
                pos += 2
                if not size or pos + size > n:
                    return None
                parts.append(_START_CODE)
                parts.append(p[pos : pos + size])
                pos += size
        else:  # STAP-B, MTAP, FU-B (interleaved mode) or reserved
            return None
    if in_fu or not parts:
        return None
    return b"".join(parts)


class FrameAssembler:
    """One producer's packets in (:meth:`push`), its complete encoded frames out.

    ``broken``: frames are held back until the next keyframe (at the start, after a loss, a
    restarted numbering); the caller may ask the publisher for one. ``dropped_frames``: frames
    not emitted (given up for a lost packet, skipped while broken, undecodable payloads),
    counted by the timestamps of their packets seen. ``frames``: frames emitted.
    """

    __slots__ = (
        "codec",
        "kind",
        "clock_rate",
        "max_packets",
        "broken",
        "dropped_frames",
        "frames",
        "_name",
        "_audio",
        "_depayload",
        "_pending",
        "_newest",
        "_next",
        "_scan",
        "_base",
        "_floor",
        "_soft",
        "_ts_ref",
        "_last_dropped_ts",
        "_seen",
        "_seen_order",
    )

    def __init__(self, codec: str, kind: str, clock_rate: int, max_packets: int = 512) -> None:
        self.codec = codec
        self.kind = kind
        self.clock_rate = clock_rate
        self.max_packets = max(max_packets, 2)
        self._audio = kind == "audio"
        name = codec.upper()
        self._name = codec  # what codecs.is_keyframe calls it
        self._depayload: Callable[[list[bytes]], bytes | None] = _whole
        if self._audio:
            pass
        elif name == "VP8":
            self._name, self._depayload = "VP8", vp8_depayload
        elif name == "H264":
            self._name, self._depayload = "H264", h264_depayload
        else:
            raise ValueError(f"no depayloader for {kind} codec {codec!r}")
        self.broken = not self._audio
        self.dropped_frames = 0
        self.frames = 0
        self._pending: dict[int, _Packet] = {}
        self._newest: int | None = None  # the newest packet's number
        # Video, in step with a frame boundary: the number of the next frame's first packet
        # (``_next``), and of the first packet not yet present from there (``_scan``: all
        # in between are held). None: not in step, waiting for a keyframe's first packet.
        self._next: int | None = None
        self._scan = 0
        self._base = 0  # packets before this number are used or given up: ignored
        self._floor = 0  # a keyframe's start may move back to here, no further
        self._soft = False  # the frame boundary at _next is a guess (a keyframe's start)
        self._ts_ref: tuple[int, int] | None = None  # (RTP timestamp, frame timestamp)
        self._last_dropped_ts: int | None = None
        # Audio: the numbers of the latest packets, to drop duplicates.
        self._seen: set[int] = set()
        self._seen_order: deque[int] = deque()

    @property
    def pending(self) -> int:
        """Packets held (waiting for the rest of their frame, or for a keyframe)."""
        return len(self._pending)

    def reset(self) -> None:
        """Starts afresh: held packets are dropped, video waits for a keyframe. Frame
        timestamps keep counting from the first frame."""
        self._discard(list(self._pending))
        self._newest = None
        self._next = None
        self._soft = False
        self.broken = not self._audio
        self._seen.clear()
        self._seen_order.clear()

    def push(
        self,
        seq: int,
        timestamp: int,
        marker: bool,
        payload: bytes,
        report: tuple[float, int] | None = None,
    ) -> list[EncodedFrame]:
        """One packet in; the frames it completes out, in order. ``report``: the publisher's
        last sender report (NTP seconds, RTP timestamp) for the frames' ``capture``."""
        if self._audio:
            return self._push_audio(seq, timestamp, payload, report)
        newest = self._newest
        if newest is None:
            self._begin(seq)
        else:
            ahead = (seq - newest) & 0xFFFF
            if ahead < 0x8000:
                if ahead > MAX_GAP:  # far ahead: the publisher started its numbering over
                    self.reset()
                    self._begin(seq)
                else:
                    self._newest = seq
            elif 0x10000 - ahead > MAX_GAP:  # far behind: likewise
                self.reset()
                self._begin(seq)
        pending = self._pending
        nxt = self._next
        if nxt is None:  # not in step: hold packets until a keyframe starts
            if (seq - self._base) & 0xFFFF >= 0x8000 or seq in pending:
                return []
            pending[seq] = (timestamp, marker, payload)
            if payload_starts_keyframe(self._name, payload):
                return self._sync(seq, report)
            if len(pending) > self.max_packets or (seq - self._base) & 0xFFFF > _SPAN:
                self._prune()
            return []
        if (seq - nxt) & 0xFFFF >= 0x8000:  # before the frame being assembled
            if (
                self._soft
                and seq == (nxt - 1) & 0xFFFF
                and not marker
                and timestamp == pending[nxt][0]
                and seq_after(seq, self._floor)
            ):
                # A late packet of the keyframe we started at: it starts the frame instead
                # (H.264's SPS/PPS sent before the IDR's first fragment).
                pending[seq] = (timestamp, marker, payload)
                self._next = self._base = seq
            return []  # a duplicate, or a retransmission of a packet already used
        if seq in pending:
            return []
        pending[seq] = (timestamp, marker, payload)
        scan = self._scan
        if seq == scan:
            return self._advance(report)
        if len(pending) > self.max_packets or (seq - scan) & 0xFFFF > _SPAN:
            return self._give_up(scan, report)  # the oldest hole will not be filled now
        return []

    def lost(
        self, seqs: Iterable[int], report: tuple[float, int] | None = None
    ) -> list[EncodedFrame]:
        """Packets lost for good (``LossTracker.expire``): the frames they belonged to are
        dropped, and video waits for a keyframe. Returns frames this releases (a keyframe
        already held behind the hole)."""
        newest = self._newest
        if self._audio or newest is None:
            return []
        base = self._base
        span = (newest - base) & 0xFFFF
        if span >= 0x8000:  # everything up to the newest is used or given up
            return []
        pending = self._pending
        holes = sorted(
            (d, seq) for seq in seqs if (d := (seq - base) & 0xFFFF) <= span and seq not in pending
        )
        # Oldest first: a keyframe held between two holes still comes out.
        out: list[EncodedFrame] = []
        for _, hole in holes:
            latest = self._next is None
            if latest:  # not in step, so nothing held starts a keyframe: the latest hole will do
                hole = holes[-1][1]
            if (hole - self._base) & 0xFFFF < 0x8000 and hole not in pending:
                out += self._give_up(hole, report)
            if latest:
                break
        return out

    # ------------------------------------------------------------------ video internals

    def _begin(self, seq: int) -> None:
        self._newest = seq
        # A first packet may be preceded by reordered ones, as late as a restart allows.
        self._base = self._floor = (seq - MAX_GAP) & 0xFFFF

    def _advance(self, report: tuple[float, int] | None) -> list[EncodedFrame]:
        """From _scan on: completes every frame whose packets are all held now."""
        pending = self._pending
        start = self._next
        assert start is not None
        seq = self._scan
        start_ts = pending[start][0]
        out: list[EncodedFrame] = []
        while (entry := pending.get(seq)) is not None:
            if entry[0] != start_ts:  # no marker, but a new timestamp: a new frame
                self._emit(start, seq, out, report)
                start, start_ts = seq, entry[0]
            seq = (seq + 1) & 0xFFFF
            if entry[1]:
                self._emit(start, seq, out, report)
                start = seq
                following = pending.get(seq)
                if following is None:
                    break
                start_ts = following[0]
        self._next = self._base = start
        self._scan = seq
        return out

    def _emit(
        self, start: int, end: int, out: list[EncodedFrame], report: tuple[float, int] | None
    ) -> None:
        """The held packets start..end-1 are a whole frame: it goes out, unless broken."""
        pending = self._pending
        payloads = []
        seq = start
        timestamp = pending[start][0]
        while seq != end:
            payloads.append(pending.pop(seq)[2])
            seq = (seq + 1) & 0xFFFF
        self._soft = False
        data = self._depayload(payloads)
        if data is None:
            self._dropped(timestamp)
            self.broken = True
            return
        key = is_keyframe(self._name, data)
        if self.broken and not key:
            self._dropped(timestamp)
            return
        self.broken = False
        out.append(self._frame(data, timestamp, key, report))

    def _sync(self, seq: int, report: tuple[float, int] | None) -> list[EncodedFrame]:
        """In step again at ``seq``, the first packet of a keyframe; held packets before it
        are dropped."""
        pending = self._pending
        floor = self._base
        timestamp = pending[seq][0]
        while True:  # back over earlier packets of the same frame (H.264: SPS, PPS)
            before = (seq - 1) & 0xFFFF
            entry = pending.get(before)
            if entry is None or entry[0] != timestamp or entry[1] or not seq_after(before, floor):
                break
            seq = before
        self._discard([s for s in pending if (s - seq) & 0xFFFF >= 0x8000])
        self._next = self._base = self._scan = seq
        self._floor = floor
        self._soft = True
        return self._advance(report)

    def _give_up(self, hole: int, report: tuple[float, int] | None) -> list[EncodedFrame]:
        """Packet ``hole`` will not come: everything up to it is dropped, and assembly goes
        on from the first held keyframe start after it (or waits for one)."""
        base = (hole + 1) & 0xFFFF
        pending = self._pending
        name = self._name
        old = []
        key, key_d = None, 0x10000
        for seq, entry in pending.items():
            d = (seq - base) & 0xFFFF
            if d >= 0x8000:
                old.append(seq)
            elif d < key_d and payload_starts_keyframe(name, entry[2]):
                key, key_d = seq, d
        self._discard(old)
        self.broken = True
        self._next = None
        self._soft = False
        self._base = base
        if key is not None:
            return self._sync(key, report)
        newest = self._newest
        if len(pending) > self.max_packets or (
            newest is not None and (newest - base) & 0xFFFF > _SPAN
        ):
            self._prune()
        return []

    def _prune(self) -> None:
        """Not in step and too many packets held: the older half goes."""
        newest = self._newest
        assert newest is not None
        keep = self.max_packets // 2
        self._discard([s for s in self._pending if (newest - s) & 0xFFFF >= keep])
        base = (newest - keep + 1) & 0xFFFF
        if seq_after(base, self._base):
            self._base = base

    def _discard(self, seqs: list[int]) -> None:
        """Drops held packets; counts their frames (timestamps) as dropped."""
        if not seqs:
            return
        pending = self._pending
        newest = self._newest or 0
        stamps = set()
        last, last_d = 0, 0x10000
        for seq in seqs:
            timestamp = pending.pop(seq)[0]
            stamps.add(timestamp)
            d = (newest - seq) & 0xFFFF
            if d < last_d:
                last, last_d = timestamp, d
        # A frame cut in two by successive discards counts once.
        if self._last_dropped_ts is not None:
            stamps.discard(self._last_dropped_ts)
        self._last_dropped_ts = last
        self.dropped_frames += len(stamps)

    def _dropped(self, timestamp: int) -> None:
        if timestamp != self._last_dropped_ts:
            self.dropped_frames += 1
        self._last_dropped_ts = timestamp

    # ------------------------------------------------------------------ common

    def _push_audio(
        self, seq: int, timestamp: int, payload: bytes, report: tuple[float, int] | None
    ) -> list[EncodedFrame]:
        newest = self._newest
        seen = self._seen
        if newest is None:
            self._newest = seq
        else:
            ahead = (seq - newest) & 0xFFFF
            if ahead < 0x8000:
                if ahead > MAX_GAP:  # a restarted numbering: old numbers mean nothing now
                    self.reset()
                self._newest = seq
            else:
                behind = 0x10000 - ahead
                if behind > MAX_GAP:
                    self.reset()
                    self._newest = seq
                elif behind >= self.max_packets:
                    self.dropped_frames += 1
                    return []  # too old to tell from a duplicate
        if seq in seen:
            return []
        order = self._seen_order
        if len(order) >= self.max_packets:
            seen.discard(order.popleft())
        order.append(seq)
        seen.add(seq)
        return [self._frame(payload, timestamp, True, report)]

    def _frame(
        self, data: bytes, raw_ts: int, key: bool, report: tuple[float, int] | None
    ) -> EncodedFrame:
        ref = self._ts_ref
        if ref is None:
            timestamp = 0
        else:  # signed distance to the previous frame: wraps (and late audio) count right
            timestamp = ref[1] + ((raw_ts - ref[0] + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        self._ts_ref = (raw_ts, timestamp)
        self.frames += 1
        capture = None if report is None else capture_time(raw_ts, report, self.clock_rate)
        return EncodedFrame(data, timestamp, self.kind, self.codec, self.clock_rate, key, capture)
