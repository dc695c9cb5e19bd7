"""The VP8 payload descriptor and one subscriber's picture numbering (sfu/media/rtp/vp8.py),
as tables: each row is a packet of the publisher's encodings and what the subscriber gets."""

from __future__ import annotations

import pytest

from sfu.media.rtp.vp8 import Vp8Munger, parse, rewrite

BODY = b"\x10\x02\x00\x9d\x01\x2a" + bytes(8)  # any VP8 payload after the descriptor


def packet(
    pid: int | None,
    tl0: int | None = None,
    tid: int | None = None,
    sync: bool = False,
    start: bool = True,
    long_id: bool = True,
) -> bytes:
    """A payload with the descriptor fields given (None: the field is absent)."""
    ext = (0x80 if pid is not None else 0) | (0x40 if tl0 is not None else 0)
    ext |= 0x20 if tid is not None else 0
    head = bytearray([(0x80 if ext else 0) | (0x10 if start else 0)])
    if ext:
        head.append(ext)
    if pid is not None:
        head += bytes([0x80 | pid >> 8, pid & 0xFF]) if long_id else bytes([pid & 0x7F])
    if tl0 is not None:
        head.append(tl0)
    if tid is not None:
        head.append(tid << 6 | (0x20 if sync else 0))
    return bytes(head) + BODY


def fields(payload: bytes) -> tuple[int | None, int | None]:
    d = parse(payload)
    assert d is not None
    return d.picture_id, d.tl0picidx


@pytest.mark.parametrize(
    ("payload", "want"),
    [
        (packet(None), (True, 0, None, False, None, None, False, 1)),
        (packet(0x1234, 7, 2, sync=True), (True, 0, 0x1234, True, 7, 2, True, 6)),
        (packet(0x55, long_id=False), (True, 0, 0x55, False, None, None, False, 3)),
        (packet(300, 1, 0, start=False), (False, 0, 300, True, 1, 0, False, 6)),
    ],
)
def test_parse_reads_every_field(payload: bytes, want: tuple[object, ...]) -> None:
    d = parse(payload)
    assert d is not None
    got = (d.start, d.partition, d.picture_id, d.long_picture_id, d.tl0picidx, d.tid)
    assert got + (d.layer_sync, d.size) == want
    assert payload[d.size :] == BODY


@pytest.mark.parametrize(
    "cut", [b"", b"\x80", b"\x90\x80", b"\x90\x80\x81", b"\x90\x40", b"\x90\x20"]
)
def test_parse_refuses_a_truncated_descriptor(cut: bytes) -> None:
    assert parse(cut) is None


def test_rewrite_keeps_the_widths_and_the_rest() -> None:
    p = packet(0x7FFF, 255, 1)
    out = rewrite(p, parse(p), 5, 3)  # type: ignore[arg-type]
    assert fields(out) == (5, 3) and len(out) == len(p) and out[-len(BODY) :] == BODY
    short = packet(0x7F, long_id=False)
    assert fields(rewrite(short, parse(short), 0x80 + 4, None)) == (4, None)  # type: ignore[arg-type]


# (operation, payload or None, max_tid, want (picture id, tl0picidx) or None for a drop)
Row = tuple[str, bytes | None, int, tuple[int | None, int | None] | None]
ALL = 0xFF

TABLES: dict[str, list[Row]] = {
    "one encoding, nothing dropped: the publisher's numbers": [
        ("munge", packet(100, 5, 0), ALL, (100, 5)),
        ("munge", packet(100, 5, 0, start=False), ALL, (100, 5)),
        ("munge", packet(101, 5, 1), ALL, (101, 5)),
        ("munge", packet(102, 6, 0), ALL, (102, 6)),
    ],
    "a switch to another encoding continues both counters": [
        ("munge", packet(100, 5, 0), ALL, (100, 5)),
        ("munge", packet(101, 6, 0), ALL, (101, 6)),
        ("switch", None, ALL, None),
        ("munge", packet(9000, 200, 0), ALL, (102, 7)),
        ("munge", packet(9000, 200, 0, start=False), ALL, (102, 7)),
        ("munge", packet(9001, 200, 1), ALL, (103, 7)),
        ("munge", packet(9002, 201, 0), ALL, (104, 8)),
        ("switch", None, ALL, None),  # and back
        ("munge", packet(140, 40, 0), ALL, (105, 9)),
    ],
    "the counters wrap as the fields do": [
        ("munge", packet(0x7FFF, 255, 0), ALL, (0x7FFF, 255)),
        ("switch", None, ALL, None),
        ("munge", packet(10, 10, 0), ALL, (0, 0)),
    ],
    "upper temporal layers dropped: the picture ids close up": [
        ("munge", packet(10, 1, 0), 0, (10, 1)),
        ("munge", packet(11, 1, 1, sync=True), 0, None),
        ("munge", packet(11, 1, 1, sync=True, start=False), 0, None),
        ("munge", packet(12, 2, 0), 0, (11, 2)),
        ("munge", packet(13, 2, 1), 0, None),
        ("munge", packet(14, 3, 0), 0, (12, 3)),
    ],
    "a temporal layer comes back only at a layer-sync picture": [
        ("munge", packet(10, 1, 0), 0, (10, 1)),
        ("munge", packet(11, 1, 1), 1, None),  # no Y: depends on a dropped picture
        ("munge", packet(12, 2, 0), 1, (11, 2)),  # TID 0: the layer limit goes up here
        ("munge", packet(13, 2, 1), 1, (12, 2)),
    ],
    "a layer-sync picture lets the upper layer in at once": [
        ("munge", packet(10, 1, 0), 0, (10, 1)),
        ("munge", packet(11, 1, 1), 0, None),
        ("munge", packet(12, 1, 1, sync=True), 1, (11, 1)),
    ],
    # "late": a reordered or retransmitted packet; it changes nothing.
    "a late packet of a kept picture gets the numbers it had before later drops": [
        ("munge", packet(10, 1, 0), 0, (10, 1)),
        ("munge", packet(11, 1, 2), 0, None),
        ("munge", packet(12, 2, 0), 0, (11, 2)),
        ("late", packet(10, 1, 0, start=False), 0, (10, 1)),
        ("late", packet(11, 1, 2, start=False), 0, None),  # its picture was dropped
        ("munge", packet(13, 2, 2), 0, None),
        ("munge", packet(14, 3, 0), 0, (12, 3)),  # late packets moved nothing
    ],
    "a late packet of the current picture follows it": [
        ("munge", packet(10, 1, 0), 0, (10, 1)),
        ("munge", packet(11, 1, 2), 0, None),
        ("late", packet(11, 1, 2, start=False), 0, None),
        ("munge", packet(12, 2, 0), 0, (11, 2)),
        ("late", packet(12, 2, 0, start=False), 0, (11, 2)),
    ],
    "a late picture never seen is judged by its temporal layer": [
        ("munge", packet(10, 1, 0), 0, (10, 1)),
        ("munge", packet(12, 2, 0), 0, (12, 2)),  # 11 lost on the way
        ("late", packet(11, 1, 2), 0, None),  # TID 2: not forwarded
        ("late", packet(11, 1, 0), 0, (11, 1)),  # (a TID 0 one would be)
    ],
    "no descriptor fields: forwarded as it is": [
        ("munge", packet(None), 0, (None, None)),
    ],
}


@pytest.mark.parametrize("name", list(TABLES))
def test_munger(name: str) -> None:
    munger = Vp8Munger()
    for step, (op, payload, max_tid, want) in enumerate(TABLES[name]):
        if op == "switch":
            munger.switch()
            continue
        assert payload is not None
        out = munger.munge(payload, max_tid, late=op == "late")
        got = None if out is None else fields(out)
        assert got == want, f"{name}, row {step}"
        if out is not None:
            assert out[-len(BODY) :] == BODY


def test_an_unchanged_packet_is_the_publishers_own_object() -> None:
    """The common case costs no copy: a consumer that never switched or dropped."""
    munger = Vp8Munger()
    p = packet(100, 5, 0)
    assert munger.munge(p) is p
    munger.switch()
    moved = packet(7, 1, 0)
    assert munger.munge(moved) is not moved and munger.switches == 1


def test_dropped_pictures_are_counted() -> None:
    munger = Vp8Munger()
    for pid, tid in [(1, 0), (2, 2), (3, 1), (4, 0)]:
        munger.munge(packet(pid, 0, tid), 0)
    assert munger.dropped_pictures == 2 and munger.temporal_layer == 0
