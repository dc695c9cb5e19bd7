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
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.sdp import SessionDescription, candidate_from_sdp

from ..refusal import Refusal
from ..settings import Settings
from . import ice
from .aiortc.receiver import ReceiverTap, accept_header_extensions, unrouted
from .aiortc.sender import (
    prepare_sender,
    restart_sender,
    restrict_codecs,
    reuse_sender,
    sender_reusable,
)
from .aiortc.transport import (
    PeerActivity,
    failure_cause,
    receive_directly,
    route_by_mid,
    watch_consent,
)
from .consumer import Consumer
from .simulcast import OfferedLayers, answer_layers, offered_layers

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
    unsupported: str | None = None  # the codec the room needs and the offer lacks
    rids: list[str] = field(default_factory=list)  # simulcast: its encodings, lowest first


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
        self.consent = True  # False once ICE consent freshness failed (the log says so)
        self._carrying: str | None = None

    def consent_lost(self) -> None:
        self.consent = False

    def cause(self, pc: RTCPeerConnection, reason: str) -> str:
        """Why the connection is closed, in words for the log (reason: :meth:`expired`'s)."""
        if not self.consent:
            return "consent lost"  # aioice closed ICE: aiortc reports failed or closed
        if reason == "failed":
            return failure_cause(pc)
        if reason == "closed":
            return "closed by the peer"
        if pc.connectionState == "connected":
            return "silent peer"
        return f"not connected ({pc.connectionState})"

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


_CLOSED = "the publish connection closed: offer again from a new RTCPeerConnection"


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
        # Simulcast m-lines by mid: fixed when the mid first appears (its tap is made then).
        self.layers: dict[str, OfferedLayers] = {}
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
            rids=self.layers[mid].rids if mid in self.layers else None,
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
            if self.pc.signalingState == "closed":
                raise Refusal("connection_closed", _CLOSED)
            known = {t.mid for t in self.pc.getTransceivers()}
            for mid, layers in self._simulcast_offered(description.sdp).items():
                if mid not in known:  # before setRemoteDescription: its track event
                    self.layers[mid] = layers
            try:
                await self.pc.setRemoteDescription(description)
            except Exception as exc:
                if self.pc.signalingState == "closed":
                    raise Refusal("connection_closed", _CLOSED) from None
                raise Refusal("invalid_sdp", f"offer refused: {_brief(exc)}") from None
            watch_consent(self.pc, self.watchdog.consent_lost)  # before aiortc's connect runs
            route_by_mid(self.pc)
            unsupported: dict[str, str] = {}
            for transceiver in self.pc.getTransceivers():
                mime = AUDIO_MIME if transceiver.kind == "audio" else video_mime(self.settings)
                # Publishers and subscribers must agree on one codec per kind.
                if not restrict_codecs(transceiver, mime):
                    transceiver.direction = "inactive"
                    if transceiver.mid is not None:
                        unsupported[transceiver.mid] = mime
                else:
                    transceiver.direction = "recvonly"
                    offered = self.layers.get(transceiver.mid or "")
                    if offered is not None:
                        accept_header_extensions(transceiver, offered.extension_ids)
            try:
                answer = await self.pc.createAnswer()
                await self.pc.setLocalDescription(answer)
            except Refusal:
                raise  # ours, from gathering: no_free_port (ice.udp_port_range used up)
            except Exception as exc:
                # The peer closed the connection meanwhile (DTLS close_notify: aiortc
                # closes it), or the watchdog did.
                if self.pc.signalingState == "closed":
                    raise Refusal("connection_closed", _CLOSED) from None
                raise Refusal("invalid_sdp", f"offer refused: {_brief(exc)}") from None
            self.watchdog.armed = True
            self.watchdog.activity.attach(self.pc)
            receive_directly(self.pc)
            sdp = ice.limit_video_bitrate(
                self.pc.localDescription.sdp, self.settings.sfu.max_video_bitrate_kbps
            )
            accepted = {t.mid: t.direction for t in self.pc.getTransceivers()}
            layered = {m: v for m, v in self.layers.items() if accepted.get(m) == "recvonly"}
            # A simulcast track's bandwidth is the sum of its encodings (Chromium caps
            # their sum by b=AS).
            total = sum(layer.max_bitrate_kbps for layer in self.settings.sfu.simulcast_layers)
            sdp = answer_layers(sdp, layered, total)
            sdp = ice.announce(sdp, self.settings.ice)
            tracks = []
            for media in parsed.media:
                if media.kind not in ("audio", "video") or media.rtp.muxId is None:
                    continue
                mid = media.rtp.muxId
                track_id = parsed.webrtc_track_id(media)
                wants = media.port != 0 and media.direction in ("sendonly", "sendrecv")
                sending = wants and accepted.get(mid) == "recvonly"
                lacking = unsupported.get(mid) if wants else None
                rids = self.layers[mid].rids if mid in layered else []
                tracks.append(OfferedTrack(mid, media.kind, track_id, sending, lacking, rids))
            return sdp, tracks

    def _simulcast_offered(self, sdp: str) -> dict[str, OfferedLayers]:
        """The offer's simulcast m-lines this server takes: the configured encodings only
        (in their order), VP8 only, and none when ``sfu.simulcast`` is off."""
        sfu = self.settings.sfu
        if not sfu.simulcast or sfu.video_codec != "VP8":
            return {}
        configured = [layer.rid for layer in sfu.simulcast_layers]
        out = {}
        for mid, layers in offered_layers(sdp).items():
            rids = [rid for rid in configured if rid in layers.rids]
            if len(rids) >= 2:
                out[mid] = OfferedLayers(rids, layers.extension_ids)
        return out

    async def add_candidate(self, candidate: dict[str, Any]) -> None:
        await add_candidate(self.pc, candidate)

    async def close(self) -> None:
        await self.pc.close()


class SubscribeSession:
    """A participant's downlink: the peer connection only the server offers.

    :meth:`update` schedules a negotiation; negotiations run one at a time, each pushing
    ``sfu-subscribe-offer`` and waiting for ``sfu-subscribe-answer``. A new consumer takes
    the m-line of an ended consumer of its kind once the subscriber has answered the offer
    that made that m-line inactive (same mid and SSRC, new msid: :func:`reuse_sender`), or
    else a new send-only m-line; so the m-lines are as many as the most tracks forwarded at
    once, however many publishers come and go. An m-line the subscriber rejects (port 0)
    is dead: its consumer is marked ``rejected`` and never retried here, and later offers
    keep it at port 0. Past ``MAX_REJECTED_LINES`` of them ``on_full`` asks the router for a
    fresh downlink.
    """

    def __init__(
        self,
        settings: Settings,
        send: Send,
        number: int,
        on_failure: Callable[[SubscribeSession, str, str], None],
        on_rejected: Callable[[Consumer], None] = lambda consumer: None,
        on_full: Callable[[SubscribeSession], None] = lambda session: None,
    ) -> None:
        self.settings = settings
        self.number = number  # the browser opens a new RTCPeerConnection for a new number
        self.pc = RTCPeerConnection(ice.rtc_configuration(settings.ice))
        self.lines: list[Consumer] = []  # the consumer of each m-line, in m-line order
        self.pending: list[Consumer] = []  # waiting for the next offer to get an m-line
        self.watchdog = Watchdog(settings.sfu.disconnected_timeout_seconds)
        self.negotiations = 0
        self._send = send
        self._on_failure = on_failure
        self._on_rejected = on_rejected
        self._on_full = on_full
        self._dirty = False
        self._task: asyncio.Task[None] | None = None
        self._answer: asyncio.Future[RTCSessionDescription] | None = None
        self._applied: asyncio.Future[None] | None = None
        self._offers = 0  # offers sent
        self._answered = 0  # the latest offer whose answer is applied
        self._closed = False

    @property
    def consumers(self) -> list[Consumer]:
        """Every consumer of this downlink: one per m-line, then those waiting for one."""
        return self.lines + self.pending

    @property
    def carrying(self) -> str | None:
        """``"video"``, ``"audio"`` or None: what forwarded media is flowing."""
        return carrying({o.kind for o in self.lines if o.active})

    @property
    def closed(self) -> bool:
        return self._closed

    def add(self, consumer: Consumer) -> None:
        self.pending.append(consumer)
        self.update()

    def remove(self, producer_id: str) -> None:
        for consumer in self.consumers:
            if consumer.producer_id == producer_id and consumer.active:
                consumer.active = False
                consumer.track.stop()
        self.pending = [o for o in self.pending if o.active]
        self.update()

    def update(self) -> None:
        """Schedules a negotiation (merged with any already waiting)."""
        self._dirty = True
        if not self._closed and (self._task is None or self._task.done()):
            self._task = asyncio.ensure_future(self._run())

    def answer(self, description: RTCSessionDescription) -> asyncio.Future[None]:
        """Hands the subscriber's answer to the negotiation waiting for it; the future
        is done once it is applied (a :class:`Refusal` ``invalid_sdp`` if aiortc refused it:
        the connection is then closed as failed)."""
        if self._answer is None or self._answer.done() or self._applied is None:
            raise Refusal("no_pending_offer", "there is no subscribe offer to answer")
        self._answer.set_result(description)
        return self._applied

    async def _run(self) -> None:
        while self._dirty and not self._closed:
            self._dirty = False
            try:
                await self._negotiate()
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                self._on_failure(self, "negotiation_timeout", "no answer in time")
                return
            except Exception as exc:
                self._on_failure(self, "negotiation_failed", _brief(exc))
                return

    def _free_line(self, kind: str) -> int | None:
        """An m-line a new consumer of ``kind`` may take: its consumer ended, the subscriber
        answered an offer where it was inactive, and its sender's loop is over."""
        for index, consumer in enumerate(self.lines):
            if (
                consumer.kind == kind
                and not consumer.active
                and not consumer.rejected
                and consumer.retired is not None
                and consumer.retired <= self._answered
                and consumer.transceiver is not None
                and sender_reusable(consumer.transceiver.sender)
            ):
                return index
        return None

    async def _negotiate(self) -> None:
        changed = False
        reused: list[Consumer] = []
        for consumer in self.pending:
            changed = True
            index = self._free_line(consumer.kind)
            if index is not None:
                previous = self.lines[index]
                transceiver = previous.transceiver
                assert transceiver is not None
                reuse_sender(
                    transceiver.sender,
                    consumer.packer,
                    consumer.on_keyframe_request,
                    consumer.stream_id,
                    consumer.track,
                    previous.track,
                )
                transceiver.direction = "sendonly"
                consumer.transceiver = transceiver
                self.lines[index] = consumer
                reused.append(consumer)
                continue
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
            self.lines.append(consumer)
        self.pending = []
        for consumer in self.lines:
            transceiver = consumer.transceiver
            assert transceiver is not None
            if not consumer.active and transceiver.direction != "inactive":
                transceiver.direction = "inactive"
                if not consumer.rejected:
                    consumer.retired = self._offers + 1
                    changed = True
        if not changed and self.negotiations:
            return
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        self._offers += 1
        serial = self._offers
        loop = asyncio.get_running_loop()
        self._answer = loop.create_future()
        self._applied = applied = loop.create_future()
        sdp = ice.announce(self.pc.localDescription.sdp, self.settings.ice)
        sdp = reject_in_offer(sdp, {o.transceiver.mid for o in self.lines if o.rejected})  # type: ignore[union-attr]
        await self._send(
            "sfu-subscribe-offer",
            {
                "session": self.number,
                "description": {"type": "offer", "sdp": sdp},
                "tracks": [o.describe() for o in self.lines],
            },
        )
        async with asyncio.timeout(self.settings.sfu.negotiation_timeout_seconds):
            answer = await self._answer
        try:
            patched, rejected = accept_rejected(answer.sdp, sdp)
            await self.pc.setRemoteDescription(RTCSessionDescription(patched, "answer"))
        except Exception as exc:
            if not applied.done():
                applied.set_exception(Refusal("invalid_sdp", f"answer refused: {_brief(exc)}"))
            raise
        if not applied.done():
            applied.set_result(None)
        self._answered = serial
        self.watchdog.armed = True
        self.watchdog.activity.attach(self.pc)
        receive_directly(self.pc)
        watch_consent(self.pc, self.watchdog.consent_lost)
        self.negotiations += 1
        for consumer in self.lines:
            if consumer.transceiver is not None and consumer.transceiver.mid in rejected:
                if not consumer.rejected:
                    consumer.rejected = True
                    consumer.active = False
                    consumer.track.stop()
                    consumer.transceiver.direction = "inactive"
                    self._on_rejected(consumer)
        for consumer in reused:
            if consumer.active and consumer.transceiver is not None:
                restart_sender(consumer.transceiver.sender, consumer.track)
        if sum(o.rejected for o in self.lines) > MAX_REJECTED_LINES:
            self._on_full(self)

    async def add_candidate(self, candidate: dict[str, Any]) -> None:
        await add_candidate(self.pc, candidate)

    async def close(self) -> None:
        self._closed = True
        if self._applied is not None and not self._applied.done():
            self._applied.set_exception(
                Refusal("no_pending_offer", "that subscribe connection is closed")
            )
            self._applied.exception()  # retrieved: nobody may be waiting for it
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        for consumer in self.consumers:
            consumer.track.stop()
        await self.pc.close()


# Rejected m-lines a downlink keeps (they can never be reused) before the subscriber is
# moved to a fresh downlink; at port 0 each costs about 100 bytes of offer and answer.
MAX_REJECTED_LINES = 16

_SECTION = re.compile(r"(?=^m=)", re.M)
# What a rejected section of an answer takes from the answer's first accepted one: the
# transport (shared under BUNDLE), so that aiortc accepts the answer.
_TRANSPORT = ("a=ice-ufrag:", "a=ice-pwd:", "a=ice-options:", "a=fingerprint:", "a=setup:",
              "a=candidate:", "a=end-of-candidates")  # fmt: skip


def _sections(sdp: str) -> list[str]:
    return _SECTION.split(sdp.replace("\r\n", "\n"))


def _lines(section: str) -> list[str]:
    return [line for line in section.split("\n") if line]


def _mid(section: str) -> str | None:
    for line in _lines(section):
        if line.startswith("a=mid:"):
            return line[6:].strip()
    return None


def _join(sections: list[str]) -> str:
    return "\r\n".join(line for section in sections for line in _lines(section)) + "\r\n"


def reject_in_offer(sdp: str, mids: set[str | None]) -> str:
    """An offer with the m-lines of ``mids`` at port 0 (rejected earlier: JSEP keeps them
    so) and out of the BUNDLE group: kind, codecs, mid, direction and the ICE and DTLS
    attributes stay (aiortc refuses an offer without them), no candidates or SSRCs."""
    if not mids:
        return sdp
    sections = _sections(sdp)
    out = []
    for section in sections:
        lines = _lines(section)
        if lines and lines[0].startswith("m=") and _mid(section) in mids:
            kind, _port, proto, *fmt = lines[0][2:].split(" ")
            keep = [
                line
                for line in lines[1:]
                if line.startswith(("c=", "a=mid:", "a=rtpmap:", "a=rtcp-mux", *_TRANSPORT[:5]))
            ]
            out.append("\n".join([f"m={kind} 0 {proto} {' '.join(fmt)}", *keep, "a=inactive"]))
        elif lines and lines[0].startswith("v="):
            out.append(
                "\n".join(
                    " ".join(w for w in line.split(" ") if w not in mids)
                    if line.startswith("a=group:BUNDLE")
                    else line
                    for line in lines
                )
            )
        else:
            out.append(section)
    return _join(out)


def accept_rejected(answer: str, offer: str) -> tuple[str, set[str]]:
    """The subscriber's answer as aiortc accepts it, and the mids it rejected.

    A rejected m-line (port 0, as Firefox answers a codec it cannot decode) carries no ICE
    credentials, which makes aiortc refuse the whole answer ("ICE username fragment or
    password is missing"). Each becomes an ``inactive`` section with the offer's codecs and
    the transport of the answer's first accepted section; aiortc then leaves it alone.
    """
    sections = _sections(answer)
    media = [s for s in sections if s.startswith("m=")]
    rejected = [s for s in media if _lines(s)[0].split(" ")[1] == "0"]
    if not rejected:
        return answer, set()
    accepted = next((s for s in media if s not in rejected), None)
    if accepted is None:
        raise Refusal("invalid_sdp", "the answer rejects every track")
    transport = [line for line in _lines(accepted) if line.startswith(_TRANSPORT)]
    offered = [s for s in _sections(offer) if s.startswith("m=")]
    mids: set[str] = set()
    out = []
    for section in sections:
        if section in rejected:
            index = media.index(section)
            if index >= len(offered):
                raise Refusal("invalid_sdp", "the answer has more m-lines than the offer")
            source = _lines(offered[index])
            mid = _mid(offered[index])
            assert mid is not None  # every section the server offers has one
            mids.add(mid)
            kind, _port, proto, *fmt = source[0][2:].split(" ")
            body = [
                line
                for line in source[1:]
                if line.startswith(("c=", "a=mid:", "a=rtpmap:", "a=fmtp:", "a=rtcp-mux"))
            ]
            lines = [f"m={kind} 9 {proto} {' '.join(fmt)}", *body, *transport, "a=inactive"]
            out.append("\n".join(lines))
        else:
            out.append(section)
    return _join(out), mids


def _brief(exc: BaseException) -> str:
    """An exception in one short line for a log or an error message (no traceback)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:160] if text else type(exc).__name__


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
