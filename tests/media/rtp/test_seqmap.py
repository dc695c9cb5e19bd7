"""A subscriber's renumbering (sfu/media/rtp/seqmap.py), as tables in the style of
mediasoup's TestSeqManager.cpp: each row is one of the producer's packets and what the
subscriber gets."""

from __future__ import annotations

import pytest

from sfu.media.rtp.seqmap import MAX_GAP, SeqMap, seq_after

# (operation, producer seq, producer timestamp, expected subscriber (seq, ts) or None)
# "restart": a (re)start at a keyframe; "next": any later packet (map / in_order);
# "switch": a keyframe of another encoding (a simulcast layer), STEP timestamp units on.
Row = tuple[str, int, int, tuple[int, int] | None]

FIRST, ORIGIN = 100, 5000  # the subscriber's random origins
STEP = 3000  # 1/30 s at 90 kHz

TABLES: dict[str, list[Row]] = {
    "in order": [
        ("restart", 20, 900, (100, 5000)),
        ("next", 21, 900, (101, 5000)),
        ("next", 22, 3900, (102, 8000)),
    ],
    "producer wraps": [
        ("restart", 65534, 10, (100, 5000)),
        ("next", 65535, 10, (101, 5000)),
        ("next", 0, 3010, (102, 8000)),
        ("next", 1, 3010, (103, 8000)),
    ],
    "a skip to a keyframe leaves no gap": [
        ("restart", 10, 0, (100, 5000)),
        ("next", 11, 0, (101, 5000)),
        ("restart", 50, 12000, (102, 17000)),  # 12..49 never sent: numbering closes up
        ("next", 51, 12000, (103, 17000)),
    ],
    "a late packet from before the skip is dropped": [
        ("restart", 10, 0, (100, 5000)),
        ("restart", 50, 12000, (101, 17000)),
        ("next", 30, 6000, None),
        ("next", 51, 12000, (102, 17000)),
    ],
    "reordering and retransmission keep their numbers": [
        ("restart", 10, 0, (100, 5000)),
        ("next", 12, 0, (102, 5000)),  # 11 is late
        ("next", 11, 0, (101, 5000)),  # it arrives (or is retransmitted): its own number
        ("next", 13, 3000, (103, 8000)),
        ("next", 11, 0, (101, 5000)),  # a duplicate: same number, newest unchanged
        ("next", 14, 3000, (104, 8000)),
    ],
    "the producer's numbering starts over": [
        ("restart", 40000, 0, (100, 5000)),
        ("next", 40001, 0, (101, 5000)),
        ("next", 40001 - MAX_GAP - 500, 3000, (102, 8000)),  # far behind: a new numbering
        ("next", 40001 - MAX_GAP - 499, 3000, (103, 8000)),
    ],
    "a forward jump is loss, not a restart": [
        ("restart", 10, 0, (100, 5000)),
        ("next", 900, 90000, (990, 95000)),
        ("next", 901, 90000, (991, 95000)),
    ],
    "nothing before the first restart": [
        ("next", 10, 0, None),
        ("restart", 11, 0, (100, 5000)),
    ],
    # (The consumer hands the map only packets of the encoding it forwards: a late packet of
    # the previous one never reaches it.)
    "a switch to another encoding: numbers and timestamps go on": [
        ("restart", 20, 900, (100, 5000)),
        ("next", 21, 3900, (101, 8000)),
        ("switch", 40000, 7_000_000, (102, 11000)),
        ("next", 40001, 7_000_000, (103, 11000)),
        ("next", 40002, 7_003_000, (104, 14000)),
        ("switch", 23, 9900, (105, 17000)),  # and back
        ("next", 24, 12900, (106, 20000)),
    ],
    "a first switch is a start": [
        ("switch", 40000, 7_000_000, (100, 5000)),
        ("next", 40001, 7_003_000, (101, 8000)),
    ],
    "a switch across the timestamp wrap": [
        ("restart", 1, 0xFFFFFFFF - 1000, (100, 5000)),
        ("switch", 9, 123, (101, 8000)),
    ],
    # "drop": the consumer does not forward the packet (a dropped temporal layer).
    "dropped packets leave no gap": [
        ("restart", 10, 0, (100, 5000)),
        ("drop", 11, 3000, None),
        ("drop", 12, 3000, None),
        ("next", 13, 6000, (101, 11000)),
        ("next", 14, 6000, (102, 11000)),
    ],
    "a hole before a drop keeps its numbers, filled late": [
        ("restart", 10, 0, (100, 5000)),
        ("drop", 13, 3000, None),  # 11 and 12 not here yet
        ("next", 14, 6000, (103, 11000)),
        ("next", 11, 0, (101, 5000)),  # late: numbered as before the drop
        ("next", 12, 0, (102, 5000)),
        ("next", 13, 3000, None),  # a dropped packet again (retransmitted): dropped
        ("next", 15, 6000, (104, 11000)),
    ],
    "late packets between two drops": [
        ("restart", 10, 0, (100, 5000)),
        ("drop", 12, 3000, None),  # 11 not here yet: it keeps 101
        ("next", 13, 6000, (102, 11000)),
        ("drop", 15, 9000, None),  # 14 keeps 103
        ("next", 16, 12000, (104, 17000)),
        ("next", 14, 6000, (103, 11000)),
        ("next", 11, 0, (101, 5000)),
    ],
    "a restart forgets the drops": [
        ("restart", 10, 0, (100, 5000)),
        ("drop", 11, 3000, None),
        ("restart", 50, 12000, (101, 17000)),
        ("next", 51, 12000, (102, 17000)),
    ],
    "timestamps wrap": [
        ("restart", 1, 0xFFFFFFFF - 1000, (100, 5000)),
        ("next", 2, 2000, (101, 8001)),
    ],
}


def run(rows: list[Row], first: int = FIRST, origin: int = ORIGIN) -> SeqMap:
    numbering = SeqMap(first, origin)
    for i, (op, seq, ts, want) in enumerate(rows):
        if op == "switch":
            got = numbering.switch(seq, ts, STEP)
        elif op == "drop":
            assert numbering.newer(seq)
            numbering.drop(seq)
            got = None
        else:
            got = numbering.restart(seq, ts) if op == "restart" else numbering.map(seq, ts)
        assert got == want, f"row {i}: {op} {seq}/{ts}: got {got}, want {want}"
    return numbering


@pytest.mark.parametrize("name", list(TABLES))
def test_tables(name: str) -> None:
    run(TABLES[name])


def test_subscriber_numbers_wrap() -> None:
    numbering = run([("restart", 7, 0, (65535, 5000)), ("next", 8, 0, (0, 5000))], first=65535)
    assert numbering.next_seq == 1


@pytest.mark.parametrize("name", list(TABLES))
def test_in_order_agrees_with_map(name: str) -> None:
    """The inlined common case gives what map() gives, or declines (None)."""
    a, b = SeqMap(FIRST, ORIGIN), SeqMap(FIRST, ORIGIN)
    for op, seq, ts, _ in TABLES[name]:
        if op == "restart":
            assert a.restart(seq, ts) == b.restart(seq, ts)
            continue
        if op == "switch":
            assert a.switch(seq, ts, STEP) == b.switch(seq, ts, STEP)
            continue
        if op == "drop":
            a.drop(seq)
            b.drop(seq)
            continue
        fast = a.in_order(seq, ts) if a.started else None
        slow = b.map(seq, ts)
        if fast is None:
            a.map(seq, ts)
        else:
            assert fast == slow
        assert (a.next_seq, a.offset, a.start, a.last_timestamp) == (
            b.next_seq,
            b.offset,
            b.start,
            b.last_timestamp,
        )


def test_the_start_follows_the_stream_so_forwarding_never_stops() -> None:
    """After 2**15 packets "before the start" would flip meaning; the start follows."""
    numbering = SeqMap(FIRST, ORIGIN)
    numbering.restart(0, 0)
    for i in range(1, 70000):
        assert numbering.map(i & 0xFFFF, i) == ((FIRST + i) & 0xFFFF, ORIGIN + i)
    assert numbering.map((70000 - 5) & 0xFFFF, 0) is not None  # a late packet still goes


# (lost numbers, missed by this subscriber?) after: restart at 10, packets up to 20
MISSED = [
    ([15], True),
    ([5], False),  # before this subscriber's start
    ([20], False),  # the newest: it came
    ([25], False),  # after the newest: not yet a hole
    ([5, 16], True),
]


@pytest.mark.parametrize(("lost", "missed"), MISSED)
def test_missed(lost: list[int], missed: bool) -> None:
    numbering = SeqMap(FIRST, ORIGIN)
    numbering.restart(10, 0)
    numbering.map(20, 0)
    assert numbering.missed(lost) is missed


def test_first_of_segment() -> None:
    numbering = SeqMap(FIRST, ORIGIN)
    numbering.restart(10, 0)
    for seq in range(11, 30):
        numbering.map(seq, 0)
    assert numbering.first_of_segment(1000) == FIRST
    assert numbering.first_of_segment(5) == FIRST + 20 - 5
    numbering.restart(500, 0)
    assert numbering.first_of_segment(1000) == FIRST + 20


@pytest.mark.parametrize(
    ("a", "b", "after"),
    [(5, 5, True), (6, 5, True), (5, 6, False), (0, 65535, True), (65535, 0, False)],
)
def test_seq_after(a: int, b: int, after: bool) -> None:
    assert seq_after(a, b) is after
