"""A poor link emulated on a peer connection's outgoing RTP (``tc netem`` is not available
here): wraps aiortc's DTLS transport send, test tooling only."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sfu.media.aiortc.sender import ForwardingTrack


@dataclass
class LinkEmulator:
    """Emulates a poor link on a peer connection's outgoing RTP/RTCP (``tc netem`` stand-in).

    ``delay`` seconds are awaited before each packet goes out (a slow link makes the
    sender fall behind); ``drop`` decides, from the plain RTP packet bytes, what is lost.
    """

    delay: float = 0.0
    drop: Callable[[bytes], bool] | None = None
    sent: int = 0
    dropped: int = 0
    _originals: list[tuple[Any, Any]] = field(default_factory=list)

    def attach(self, pc: Any) -> None:
        """Wraps the DTLS transports of ``pc`` (all its transceivers)."""
        for transceiver in pc.getTransceivers():
            track = transceiver.sender.track
            if isinstance(track, ForwardingTrack):
                track.send_through_transport()  # its packets now go through the wrapper
            transport = transceiver.sender.transport
            if any(t is transport for t, _ in self._originals):
                continue  # bundled: one transport for several transceivers
            original = transport._send_rtp
            self._originals.append((transport, original))
            transport._send_rtp = self._wrap(original)

    def _wrap(self, original: Callable[[bytes], Awaitable[None]]) -> Callable[[bytes], Any]:
        async def send(data: bytes) -> None:
            if self.drop is not None and self.drop(data):
                self.dropped += 1
                return
            if self.delay:
                await asyncio.sleep(self.delay)
            self.sent += 1
            await original(data)

        return send
