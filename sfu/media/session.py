"""One participant's server-side peer connections and their negotiation.

A participant has up to two: the *publish* connection, which the browser offers and the
server answers (its incoming tracks become producers), and the *subscribe* connection,
which only the server offers (one send-only m-line per producer it forwards). Having one
offerer per connection avoids glare, and m-lines are never stopped or recycled (a removed
track's m-line becomes inactive), which aiortc does not handle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.sdp import SessionDescription, candidate_from_sdp

from ..refusal import Refusal
from ..settings import Settings
from . import ice
from .aiortc.receiver import ReceiverTap, unrouted
from .aiortc.sender import prepare_sender, restrict_codecs
from .aiortc.transport import PeerActivity, receive_directly
from .consumer import Consumer

logger = logging.getLogger(__name__)

Send = Callable[[str, dict[str, Any]], Awaitable[None]]

AUDIO_MIME = "audio/opus"
# Least silence (no RTCP/RTP) before a connected peer counts as gone. Receivers report
# video about every second, but browsers report audio only every ~5 s (up to 7.5 s).
SILENCE_MIN = {"video": 3.0, "audio": 12.0}


def video_mime(settings: Settings) -> str:
    return "video/" + settings.sfu.video_codec


def parse_description(value: Any, expected_type: str) -> RTCSessionDescription:
    """An ``{type, sdp}`` payload as a description of the expected type, or a Refusal."""
    if (
        not isinstance(value, dict)
        or value.get("type") != expected_type
        or not isinstance(value.get("sdp"), str)
        or not value["sdp"].startswith("v=")
    ):
        raise Refusal("invalid_payload", f"description must be {{type: {expected_type!r}, sdp}}")
    return RTCSessionDescription(sdp=value["sdp"], type=expected_type)


def parse_offer(description: RTCSessionDescription) -> SessionDescription:
    """A publisher's offer, parsed; a Refusal ``invalid_sdp`` when it cannot be used."""
    try:
        parsed = SessionDescription.parse(description.sdp)
    except Exception as exc:
        raise Refusal("invalid_sdp", f"cannot parse the offer: {str(exc)[:120]}") from None
    if not any(m.kind in ("audio", "video") for m in parsed.media):
        raise Refusal("invalid_sdp", "the offer has no audio or video")
    return parsed


@dataclass
class OfferedTrack:
    """What the publisher's latest offer says about one of its m-lines."""

    mid: str
    kind: str
    track_id: str | None
    sending: bool


class Watchdog:
    """Closes a connection that failed, or has not been connected for too long.

    "Not connected" includes a connected peer that went silent: while the connection
    carries media, its peer sends RTCP about every second.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.armed = False  # set once the remote description is in: ICE has started
        self.bad_since: float | None = None
        self.activity = PeerActivity()
        self._carrying: str | None = None

    def expired(self, pc: RTCPeerConnection, now: float, carrying: str | None) -> str | None:
        """Why the connection should close now, if it should.

        ``carrying``: ``"video"`` if video flows, ``"audio"`` if only audio does, else None.
        """
        if pc.connectionState in ("failed", "closed"):
            return pc.connectionState  # closed: by the remote peer (DTLS close_notify)
        if carrying and not self._carrying:
            self.activity.last = now  # a peer need not send RTCP while nothing flows
        self._carrying = carrying
        if not self.armed:
            self.bad_since = None
            return None
        if pc.connectionState == "connected":
            self.bad_since = None
            # RTCP comes every 0.5-1.5 s (aiortc) or ~1 s (browsers): never less than 3 s.
            if carrying and now - self.activity.last >= max(self.timeout, SILENCE_MIN[carrying]):
                return "disconnected"
            return None
        if self.bad_since is None:
            self.bad_since = now
        if now - self.bad_since >= self.timeout:
            return "disconnected"
        return None


def carrying(kinds: set[str]) -> str | None:
    """The media kind whose RTCP timing applies to a connection carrying these kinds."""
    return "video" if "video" in kinds else "audio" if kinds else None


class PublishSession:
    """A participant's uplink: the peer connection the browser offers and the server answers.

    Each incoming track gets a :class:`ReceiverTap`, which the router routes to the track's
    producer once the offer is answered (:meth:`ReceiverTap.route`).
    """

    def __init__(
        self,
        settings: Settings,
        remb_cap: Callable[[str], int],
    ) -> None:
        self.settings = settings
        self.pc = RTCPeerConnection(ice.rtc_configuration(settings.ice))
        self.taps: dict[str, ReceiverTap] = {}
        self.remote_ufrag: str | None = None  # identifies the browser's RTCPeerConnection
        self.lock = asyncio.Lock()
        self.watchdog = Watchdog(settings.sfu.disconnected_timeout_seconds)
        self._remb_cap = remb_cap
        self.pc.on("track", self._track)

    def _track(self, track: Any) -> None:
        # Synchronous: the tap must be in place before aiortc starts the receiver.
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        mid = transceiver.mid
        assert mid is not None  # set by setRemoteDescription, before the "track" event
        tap = ReceiverTap(
            transceiver.receiver,
            track.kind,
            jitter_timeout=self.settings.sfu.jitter_timeout_ms / 1000,
            on_packet=unrouted,  # until the router makes it a producer (ReceiverTap.route)
        )
        if track.kind == "video":
            tap.cap_remb(lambda: self._remb_cap(mid))
        self.taps[mid] = tap

    async def offer(
        self, description: RTCSessionDescription, parsed: SessionDescription
    ) -> tuple[str, list[OfferedTrack]]:
        """Applies the browser's offer (checked by :func:`parse_offer`); returns the answer's
        SDP and the offered tracks."""
        async with self.lock:
            try:
                await self.pc.setRemoteDescription(description)
            except Exception as exc:
                raise Refusal("invalid_sdp", f"offer refused: {exc}") from None
            for transceiver in self.pc.getTransceivers():
                mime = AUDIO_MIME if transceiver.kind == "audio" else video_mime(self.settings)
                # Publishers and subscribers must agree on one codec per kind.
                if not restrict_codecs(transceiver, mime):
                    transceiver.direction = "inactive"
                else:
                    transceiver.direction = "recvonly"
            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)
            self.watchdog.armed = True
            self.watchdog.activity.attach(self.pc)
            receive_directly(self.pc)
            sdp = ice.limit_video_bitrate(
                self.pc.localDescription.sdp, self.settings.sfu.max_video_bitrate_kbps
            )
            sdp = ice.announce(sdp, self.settings.ice)
            tracks = []
            accepted = {t.mid: t.direction for t in self.pc.getTransceivers()}
            for media in parsed.media:
                if media.kind not in ("audio", "video") or media.rtp.muxId is None:
                    continue
                mid = media.rtp.muxId
                track_id = parsed.webrtc_track_id(media)
                sending = (
                    media.port != 0
                    and media.direction in ("sendonly", "sendrecv")
                    and accepted.get(mid) == "recvonly"
                )
                tracks.append(OfferedTrack(mid, media.kind, track_id, sending))
            return sdp, tracks

    async def add_candidate(self, candidate: dict[str, Any]) -> None:
        await add_candidate(self.pc, candidate)

    async def close(self) -> None:
        await self.pc.close()


class SubscribeSession:
    """A participant's downlink: the peer connection only the server offers.

    :meth:`update` schedules a negotiation; negotiations run one at a time, each pushing
    ``sfu-subscribe-offer`` and waiting for ``sfu-subscribe-answer``. A new producer gets a
    new send-only m-line; a removed one's m-line turns inactive and is never reused.
    """

    def __init__(
        self, settings: Settings, send: Send, number: int, on_failure: Callable[[str], None]
    ) -> None:
        self.settings = settings
        self.number = number  # the browser opens a new RTCPeerConnection for a new number
        self.pc = RTCPeerConnection(ice.rtc_configuration(settings.ice))
        self.consumers: list[Consumer] = []
        self.watchdog = Watchdog(settings.sfu.disconnected_timeout_seconds)
        self.negotiations = 0
        self._send = send
        self._on_failure = on_failure
        self._dirty = False
        self._task: asyncio.Task[None] | None = None
        self._answer: asyncio.Future[RTCSessionDescription] | None = None
        self._closed = False

    @property
    def carrying(self) -> str | None:
        """``"video"``, ``"audio"`` or None: what forwarded media is flowing."""
        return carrying({o.kind for o in self.consumers if o.active and o.transceiver is not None})

    def add(self, consumer: Consumer) -> None:
        self.consumers.append(consumer)
        self.update()

    def remove(self, producer_id: str) -> None:
        for consumer in self.consumers:
            if consumer.producer_id == producer_id and consumer.active:
                consumer.active = False
                consumer.track.stop()
        self.update()

    def update(self) -> None:
        """Schedules a negotiation (merged with any already waiting)."""
        self._dirty = True
        if not self._closed and (self._task is None or self._task.done()):
            self._task = asyncio.ensure_future(self._run())

    def answer(self, description: RTCSessionDescription) -> None:
        if self._answer is None or self._answer.done():
            raise Refusal("no_pending_offer", "there is no subscribe offer to answer")
        self._answer.set_result(description)

    async def _run(self) -> None:
        while self._dirty and not self._closed:
            self._dirty = False
            try:
                await self._negotiate()
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                self._on_failure("negotiation_timeout")
                return
            except Exception as exc:
                logger.info("subscribe negotiation failed: %r", exc)
                self._on_failure("negotiation_failed")
                return

    async def _negotiate(self) -> None:
        self.consumers = [o for o in self.consumers if o.active or o.transceiver is not None]
        changed = False
        for consumer in self.consumers:
            if consumer.active and consumer.transceiver is None:
                transceiver = self.pc.addTransceiver(consumer.track, direction="sendonly")
                mime = AUDIO_MIME if consumer.kind == "audio" else video_mime(self.settings)
                transceiver.setCodecPreferences(
                    [
                        c
                        for c in RTCRtpSender.getCapabilities(consumer.kind).codecs
                        if c.mimeType.lower() in (mime.lower(), f"{consumer.kind}/rtx")
                    ]
                )
                prepare_sender(
                    transceiver.sender,
                    consumer.packer,
                    consumer.on_keyframe_request,
                    consumer.stream_id,
                    consumer.track,
                    consumer.rtcp_clock,
                )
                consumer.transceiver = transceiver
                changed = True
            elif not consumer.active and consumer.transceiver is not None:
                if consumer.transceiver.direction != "inactive":
                    consumer.transceiver.direction = "inactive"
                    changed = True
        if not changed and self.negotiations:
            return
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        loop = asyncio.get_running_loop()
        self._answer = loop.create_future()
        sdp = ice.announce(self.pc.localDescription.sdp, self.settings.ice)
        await self._send(
            "sfu-subscribe-offer",
            {
                "session": self.number,
                "description": {"type": "offer", "sdp": sdp},
                "tracks": [o.describe() for o in self.consumers if o.transceiver is not None],
            },
        )
        async with asyncio.timeout(self.settings.sfu.negotiation_timeout_seconds):
            answer = await self._answer
        await self.pc.setRemoteDescription(answer)
        self.watchdog.armed = True
        self.watchdog.activity.attach(self.pc)
        receive_directly(self.pc)
        self.negotiations += 1

    async def add_candidate(self, candidate: dict[str, Any]) -> None:
        await add_candidate(self.pc, candidate)

    async def close(self) -> None:
        self._closed = True
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        for consumer in self.consumers:
            consumer.track.stop()
        await self.pc.close()


async def add_candidate(pc: RTCPeerConnection, value: dict[str, Any]) -> None:
    """Adds a trickled browser candidate (``RTCIceCandidateInit``); end-of-candidates is a no-op."""
    text = value.get("candidate")
    if not isinstance(text, str):
        raise Refusal("invalid_payload", "candidate must be {candidate, sdpMid, sdpMLineIndex}")
    if not text:
        return
    try:
        candidate = candidate_from_sdp(text.removeprefix("a=").removeprefix("candidate:"))
    except Exception:
        raise Refusal("invalid_payload", "unparsable candidate") from None
    mid = value.get("sdpMid")
    index = value.get("sdpMLineIndex")
    candidate.sdpMid = mid if isinstance(mid, str) else None
    candidate.sdpMLineIndex = index if isinstance(index, int) else None
    if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
        candidate.sdpMLineIndex = 0  # everything is bundled on the first m-line
    if pc.remoteDescription is None:
        raise Refusal("not_ready", "send the candidate after the description")
    await pc.addIceCandidate(candidate)
