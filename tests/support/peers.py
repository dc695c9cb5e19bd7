"""The synthetic participants of sfu/loadtest.py, and what the tests assert of them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

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
    "SocketRouter",
    "ToneTrack",
    "assert_in_order",
    "draw_number",
    "read_number",
]


class SocketRouter:
    """The router interface SfuPeer speaks, carried over a real Socket.IO connection
    (a ``tests.conftest.Client``). Publishers only: subscribe offers are left unanswered,
    which keeps the tests' CPU low."""

    def __init__(self, client: Any, room: str, name: str) -> None:
        self.client, self.room, self.name = client, room, name
        self.ack: dict[str, Any] = {}

    async def join(self, user_id: str, send: Callable[[str, dict], Awaitable[None]]) -> None:
        for event in ("sfu-audio-levels", "sfu-connection-closed", "sfu-subscribe-offer"):
            self.client.sio.on(event, lambda *args: None)
        self.ack = await self.client.join(self.room, user_id, self.name, mode="sfu")

    async def handle(self, user_id: str, event: str, payload: dict) -> dict:
        return await self.client.call(event, payload)


def assert_in_order(received: Received, min_frames: int) -> None:
    """Every decoded frame is a clean picture and the numbers only go up."""
    numbers = received.numbers
    assert len(numbers) >= min_frames, f"only {len(numbers)} frames decoded"
    assert received.unclean == 0, f"{received.unclean} frames decoded with damaged pixels"
    assert all(b > a for a, b in zip(numbers, numbers[1:], strict=False)), numbers
