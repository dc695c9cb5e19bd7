"""Loss tracking (sfu/media/rtp/loss.py) and the retransmission history (history.py)."""

from __future__ import annotations

import struct

import pytest

from sfu.media.rtp.history import PacketHistory
from sfu.media.rtp.loss import LossTracker
from sfu.media.rtp.seqmap import MAX_GAP


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# (arriving seq, newest? (None: a duplicate, not forwarded), missing afterwards)
LOSS_TABLES: dict[str, list[tuple[int, bool | None, set[int]]]] = {
    "in order": [(10, True, set()), (11, True, set()), (12, True, set())],
    "a gap, then the retransmission": [
        (10, True, set()),
        (13, True, {11, 12}),
        (12, False, {11}),  # retransmitted: not the newest
        (11, False, set()),
    ],
    "a duplicate, and one from before the stream": [
        (10, True, set()),
        (11, True, set()),
        (11, None, set()),  # a publisher's padding by retransmission, or a repeat
        (9, None, set()),
    ],
    "a hole filled once, then a duplicate": [
        (10, True, set()),
        (12, True, {11}),
        (11, False, set()),  # reordered or retransmitted: wanted
        (11, None, set()),
        (12, None, set()),
    ],
    "across the wrap": [(65534, True, set()), (1, True, {65535, 0}), (0, False, {65535})],
    "a jump past the gap limit is a restart, not loss": [
        (10, True, set()),
        (10 + MAX_GAP + 2, True, set()),
        (10 + MAX_GAP + 3, True, set()),
    ],
    "numbering started over further back": [
        (30000, True, set()),
        (30000 - MAX_GAP - 10, True, set()),
        (30000 - MAX_GAP - 9, True, set()),
    ],
}


@pytest.mark.parametrize("name", list(LOSS_TABLES))
def test_loss_tables(name: str) -> None:
    tracker = LossTracker(Clock())
    for i, (seq, newest, missing) in enumerate(LOSS_TABLES[name]):
        assert tracker.add(seq) is newest, f"row {i}"
        assert set(tracker.missing) == missing, f"row {i}"


def test_losses_expire_after_the_timeout_only() -> None:
    clock = Clock()
    tracker = LossTracker(clock)
    tracker.add(1)
    tracker.add(4)  # 2 and 3 missed at t=0
    clock.now = 0.2
    tracker.add(6)  # 5 missed at t=0.2
    clock.now = 0.35
    assert tracker.expire(0.3) == [2, 3]
    assert tracker.lost == 2 and set(tracker.missing) == {5}
    assert tracker.expire(0.3) == []
    clock.now = 0.6
    assert tracker.expire(0.3) == [5] and tracker.lost == 3


def packet(seq: int, ts: int) -> bytes:
    return struct.pack("!BBHLL", 0x80, 96, seq, ts, 1) + b"payload"


def test_history_finds_only_the_number_asked_for() -> None:
    history = PacketHistory(128)
    history[300 % 128] = packet(300, 9000)
    assert history.find(300) == packet(300, 9000)
    assert history.timestamp(300) == 9000
    assert history.find(300 + 128) is None  # same slot, another number
    assert history.timestamp(172) is None
    assert history.find(301) is None
    history[(300 + 128) % 128] = packet(428, 9999)  # the ring moves on
    assert history.find(300) is None and history.timestamp(428) == 9999
