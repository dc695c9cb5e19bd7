"""The synthetic participants of sfu/loadtest.py, and what the tests assert of them."""

from __future__ import annotations

import asyncio
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
    "Subscriber",
    "reject_m_line",
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

    def __init__(self, client: Any, room: str, name: str, mode: str = "sfu") -> None:
        self.client, self.room, self.name, self.mode = client, room, name, mode
        self.ack: dict[str, Any] = {}

    async def join(self, user_id: str, send: Callable[[str, dict], Awaitable[None]]) -> None:
        for event in ("sfu-audio-levels", "sfu-connection-closed", "sfu-subscribe-offer"):
            self.client.sio.on(event, lambda *args: None)
        self.ack = await self.client.join(self.room, user_id, self.name, mode=self.mode)

    async def handle(self, user_id: str, event: str, payload: dict) -> dict:
        return await self.client.call(event, payload)


def assert_in_order(received: Received, min_frames: int) -> None:
    """Every decoded frame is a clean picture and the numbers only go up."""
    numbers = received.numbers
    assert len(numbers) >= min_frames, f"only {len(numbers)} frames decoded"
    assert received.unclean == 0, f"{received.unclean} frames decoded with damaged pixels"
    assert all(b > a for a, b in zip(numbers, numbers[1:], strict=False)), numbers


class Subscriber(SfuPeer):
    """An :class:`SfuPeer` that keeps every offer and answer, can leave offers unanswered,
    and can rewrite its answers before sending them (``munge``: answer SDP, offer -> SDP),
    e.g. to reject an m-line as Firefox does."""

    def __init__(
        self,
        router: Any,
        user_id: str,
        munge: Callable[[str, dict[str, Any]], str] | None = None,
        answer: bool = True,
    ) -> None:
        super().__init__(router, user_id)
        self.munge = munge
        self.answering = answer  # False: offers are left unanswered
        self.offers: list[dict[str, Any]] = []
        self.answers: list[str] = []  # every answer's SDP as sent
        self.acks: list[dict[str, Any]] = []

    async def _answer_offers(self) -> None:
        from aiortc import RTCPeerConnection, RTCSessionDescription

        while True:
            offer = await self._offers.get()
            self.offers.append(offer)
            if not self.answering:
                continue
            if offer["session"] != self.session or self.subscribe_pc is None:
                if self.subscribe_pc is not None:
                    await self.subscribe_pc.close()
                self.session = offer["session"]
                self.subscribe_pc = RTCPeerConnection(self.configuration)
                self.subscribe_pc.on("track", self._on_track)
            pc = self.subscribe_pc
            self._take_tracks(offer["tracks"])
            await pc.setRemoteDescription(RTCSessionDescription(**offer["description"]))
            await pc.setLocalDescription(await pc.createAnswer())
            sdp = pc.localDescription.sdp
            if self.munge is not None:
                sdp = self.munge(sdp, offer)
            self.answers.append(sdp)
            ack = await self.router.handle(
                self.user_id,
                "sfu-subscribe-answer",
                {"session": self.session, "description": {"type": "answer", "sdp": sdp}},
            )
            self.acks.append(ack)
            if not ack["ok"]:
                self.answer_errors.append(ack)

    def m_lines(self) -> int:
        """The m-lines of the latest offer."""
        return self.offers[-1]["description"]["sdp"].count("\nm=") if self.offers else 0

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 20) -> None:
        async def wait() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout)

    async def wait_frames(self, user_id: str, frames: int, timeout: float = 20) -> Received:
        """Waits until ``frames`` video frames of that participant's camera were decoded."""
        await self.wait_for(
            lambda: (r := self.video_from(user_id)) is not None and len(r.numbers) >= frames,
            timeout,
        )
        received = self.video_from(user_id)
        assert received is not None
        return received


def reject_m_line(answer: str, mid: str) -> str:
    """An answer with the m-line ``mid`` rejected the way Firefox rejects a codec it cannot
    decode: port 0, no ICE credentials, candidates or DTLS lines in that section, and out
    of the BUNDLE group."""
    text = answer.replace("\r\n", "\n")
    head, *sections = text.split("\nm=")
    out = []
    for section in sections:
        lines = section.split("\n")
        if f"a=mid:{mid}" in lines:
            kind, _port, proto, *fmt = lines[0].split(" ")
            kept = [line for line in lines[1:] if line.startswith(("a=rtpmap:", "a=fmtp:"))]
            lines = [f"{kind} 0 {proto} {' '.join(fmt)}", "c=IN IP4 0.0.0.0", "a=inactive",
                     f"a=mid:{mid}", *kept]  # fmt: skip
        out.append("\n".join(line for line in lines if line))
    head = "\n".join(
        " ".join(w for w in line.split(" ") if w != mid) if line.startswith("a=group:") else line
        for line in head.split("\n")
    )
    return ("\nm=".join([head, *out]) + "\n").replace("\n", "\r\n").replace("\r\n\r\n", "\r\n")
