"""The synthetic participants of sfu/loadtest.py, and what the tests assert of them."""

from __future__ import annotations

from sfu.loadtest import (
    NumberedVideoTrack,
    Received,
    SfuPeer,
    ToneTrack,
    draw_number,
    read_number,
)

__all__ = [
    "NumberedVideoTrack",
    "Received",
    "SfuPeer",
    "ToneTrack",
    "assert_in_order",
    "draw_number",
    "read_number",
]


def assert_in_order(received: Received, min_frames: int) -> None:
    """Every decoded frame is a clean picture and the numbers only go up."""
    numbers = received.numbers
    assert len(numbers) >= min_frames, f"only {len(numbers)} frames decoded"
    assert received.unclean == 0, f"{received.unclean} frames decoded with damaged pixels"
    assert all(b > a for a, b in zip(numbers, numbers[1:], strict=False)), numbers
