"""The media router of an SFU room: publishers' incoming tracks to every other participant.

RTP packets are forwarded as they arrive, never decoded or re-encoded (see
:mod:`sfu.media.aiortc`); in-process sinks (the recorder) get reassembled frames.
The router also owns the keyframe logic: new subscribers wait for a keyframe and one is
requested, subscribers' PLI/FIR are merged and throttled per publisher, a slow subscriber
drops to the next keyframe. It knows nothing of Socket.IO: the signaling layer calls
:meth:`Router.handle` with the client's ``sfu-*`` events and gives :meth:`Router.join` a
``send(event, payload)`` coroutine for server-initiated messages (docs/sfu.md).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..refusal import Refusal
from ..settings import Settings
from . import ice, layer_choice
from .aiortc.sender import ForwardingTrack, Packer, RtcpClock, encodes_attempted, sender_running
from .consumer import Consumer
from .layer_selector import ALL_TEMPORAL, View
from .observer import Ended, FrameObserver, Sink, audio_levels
from .producer import LayerState, Producer
from .session import (
    OfferedTrack,
    PublishSession,
    Send,
    SubscribeSession,
    carrying,
    parse_description,
    parse_offer,
)

logger = logging.getLogger(__name__)

SOURCES = ("camera", "microphone", "screen", "screen-audio")
_UFRAG = re.compile(r"^a=ice-ufrag:(\S+)", re.M)
# The router's periodic work: this often while packets arrive, at least this often idle.
_TICK = 0.1
_IDLE_TICK = 1.0
_RTCP_INTERVAL = 1.0  # aiortc's mean
_ANSWER_APPLY_SECONDS = 10.0  # longest an sfu-subscribe-answer's ack waits for aiortc
_MAX_VIEWS = 200


@dataclass(eq=False)
class Participant:
    """A participant of the room as the media layer sees it."""

    user_id: str
    send: Send
    publish: PublishSession | None = None
    subscribe: SubscribeSession | None = None
    sessions: int = 0  # subscribe sessions opened so far
    # The server closed the downlink (failed, timed out): no new one until sfu-subscribe.
    downlink_closed: bool = False
    # False: the participant only publishes (no subscribe grant; a recorded P2P room's
    # uplink): it is offered nothing, ever.
    receives: bool = True
    # One publish negotiation at a time: a new offer may replace the connection another
    # is still being applied to.
    publishing: asyncio.Lock = field(default_factory=asyncio.Lock)


class Router:
    """The media router of one SFU room: producers (publishers' incoming tracks) to consumers."""

    def __init__(self, settings: Settings, room_id: str) -> None:
        self.settings = settings
        self.room_id = room_id
        self.participants: dict[str, Participant] = {}
        self.producers: dict[str, Producer] = {}
        self._observers: list[FrameObserver] = []
        self._tasks: set[asyncio.Future[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._tick_due = 0.0  # when packets should next wake the ticker (monotonic)
        self._tick_now = asyncio.Event()
        self._rtcp_clock = RtcpClock()
        self._last_rtcp = 0.0
        self._serial = itertools.count(1)
        self._last_levels: dict[str, int] = {}
        self._last_levels_push = 0.0
        self._closed = False
        ice.apply_host_addresses(settings.ice)

    # --- the signaling layer's interface ---------------------------------------------

    async def join(
        self, user_id: str, send: Callable[[str, dict], Awaitable[None]], *, receives: bool = True
    ) -> None:
        """Adds a participant; it will be offered every other participant's tracks, unless
        it only publishes (``receives=False``)."""
        if self._closed:
            raise RuntimeError("router closed")
        if user_id in self.participants:
            await self.leave(user_id)
        participant = Participant(user_id, send, receives=receives)
        self.participants[user_id] = participant
        if self._ticker is None:
            self._ticker = asyncio.ensure_future(self._tick())
        for producer in self.producers.values():
            if producer.user_id != user_id:
                self._consume(participant, producer)

    async def handle(self, user_id: str, event: str, payload: dict) -> dict:
        """Handles a client ``sfu-*`` event; returns its acknowledgement. Never raises."""
        participant = self.participants.get(user_id)
        if participant is None:
            return _error("not_in_room", "join the room first")
        if payload is None:
            payload = {}  # an event emitted without data
        if not isinstance(payload, dict):
            return _error("invalid_payload", "payload must be an object")
        handler = self._handlers.get(event)
        if handler is None:
            return _error("unknown_event", f"unknown event {event!r}")
        try:
            return await handler(self, participant, payload)
        except Refusal as exc:
            return _error(exc.code, exc.message)
        except Exception:
            logger.exception("room %s: %s from %s failed", self.room_id, event, user_id)
            return _error("internal_error", "the media server failed to handle this")

    async def leave(self, user_id: str) -> None:
        """Closes everything of a participant: connections, producers, consumers."""
        participant = self.participants.pop(user_id, None)
        if participant is None:
            return
        async with participant.publishing:  # an offer being applied finishes first
            await self._close_publish(participant)
        await self._close_subscribe(participant)

    def stop_sources(self, user_id: str, prefix: str) -> None:
        """Stops forwarding a participant's producers whose source starts with ``prefix``
        (a moderator stopped its screen share: #13)."""
        for producer in list(self.producers.values()):
            if producer.user_id == user_id and producer.source.startswith(prefix):
                self._remove_producer(producer)

    async def close(self) -> None:
        """Closes every participant's connections (room deleted or server shutdown)."""
        self._closed = True
        for user_id in list(self.participants):
            await self.leave(user_id)
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def stats(self) -> dict:
        """Counters for /stats, metrics and tests."""
        pairs = [
            (p.user_id, o)
            for p in self.participants.values()
            if p.subscribe is not None
            for o in p.subscribe.consumers
        ]
        consumers = [o for _, o in pairs]
        return {
            "participants": len(self.participants),
            "connections": sum(
                (p.publish is not None) + (p.subscribe is not None)
                for p in self.participants.values()
            ),
            "producers": [p.describe() for p in self.producers.values()],
            "consumers": sum(o.active for o in consumers),
            "rejectedConsumers": sum(o.rejected for o in consumers),
            "forwardedFrames": sum(o.track.forwarded for o in consumers),
            "droppedFrames": sum(o.track.dropped for o in consumers),
            "queueOverflows": sum(o.track.overflows for o in consumers),
            "maxQueueDepth": max((o.track.max_depth for o in consumers), default=0),
            "forwardingEncodes": encodes_attempted(),
            "consumerList": [
                {
                    "subscriber": subscriber,
                    "userId": o.user_id,
                    "source": o.source,
                    "kind": o.kind,
                    "mid": o.transceiver.mid if o.transceiver is not None else None,
                    "forwarded": o.track.forwarded,
                    "dropped": o.track.dropped,
                    "overflows": o.track.overflows,
                    "queued": o.track.depth,
                    "waitingKeyframe": o.track.waiting_keyframe,
                    "paused": o.paused,
                    "layerSwitches": o.track.layer_switches,
                    "temporalDrops": o.track.munger.dropped_pictures if o.track.munger else 0,
                    "probeBytes": o.track.probe_bytes,
                    "rate": o.rate,
                    "remb": o.remb,
                    "trialWait": o.trial_wait,
                    "nacked": o.track.nacked,
                    "resent": o.track.resent,
                    **(o.describe_layer() if self._layered(o) else {}),
                    "sending": o.transceiver is not None and sender_running(o.transceiver.sender),
                    "rejected": o.rejected,
                }
                for subscriber, o in pairs
                if o.active or o.rejected
            ],
        }

    # --- extras: recording, active speaker --------------------------------------------

    def add_sink(self, sink: Sink, on_ended: Ended | None = None) -> Callable[[], None]:
        """Adds an observer of every producer's encoded frames (the recorder).

        ``sink(user_id, source, kind, frame)`` is called on the event loop for each
        :class:`~sfu.media.EncodedFrame`, reassembled from the same packets the consumers
        get (video starts at a keyframe, and again after a loss); it must not block.
        ``on_ended(user_id, source, kind)`` hears of each track that ends. Returns a
        function that removes the sink.
        """
        observer = FrameObserver(sink, self.request_keyframe, on_ended)
        self._observers.append(observer)
        for producer in self.producers.values():
            producer.observers.append(observer)
            self.request_keyframe(producer)

        def remove() -> None:
            if observer in self._observers:
                self._observers.remove(observer)
            for producer in self.producers.values():
                if observer in producer.observers:
                    producer.observers.remove(observer)

        return remove

    def audio_levels(self) -> dict[str, dict[str, Any]]:
        """Each publishing participant's latest microphone level: see
        :func:`~sfu.media.observer.audio_levels`."""
        return audio_levels(self.producers.values(), time.monotonic())

    # --- events -----------------------------------------------------------------------

    async def _on_publish(self, participant: Participant, payload: dict) -> dict:
        async with participant.publishing:
            return await self._publish(participant, payload)

    async def _publish(self, participant: Participant, payload: dict) -> dict:
        description = parse_description(payload.get("description"), "offer")
        sources = payload.get("sources", {})
        if not isinstance(sources, dict) or any(
            not isinstance(k, str) or v not in SOURCES for k, v in sources.items()
        ):
            raise Refusal("invalid_payload", f"sources must map track ids to {SOURCES}")
        parsed = parse_offer(description)  # before anything is closed: a bad offer changes nothing
        ufrag = _ice_ufrag(description.sdp)
        if participant.publish is not None and ufrag != participant.publish.remote_ufrag:
            # A new browser RTCPeerConnection (aiortc cannot restart ICE): start afresh.
            await self._close_publish(participant)
        created = participant.publish is None
        if created:
            user_id = participant.user_id
            participant.publish = PublishSession(
                self.settings,
                remb_cap=lambda mid: self._remb_cap(user_id, mid),
            )
        publish = participant.publish
        assert publish is not None
        try:
            sdp, tracks = await publish.offer(description, parsed)
        except Refusal:
            if created and participant.publish is publish:  # a refused offer leaves nothing
                participant.publish = None
                await publish.close()
            raise
        publish.remote_ufrag = ufrag
        if participant.publish is publish:
            self._update_producers(participant, tracks, sources)
        published = []
        for track in tracks:
            producer = self.producers.get(f"{participant.user_id}/{track.mid}")
            published.append(
                {
                    "mid": track.mid,
                    "kind": track.kind,
                    "source": producer.source if producer else None,
                    "active": producer is not None,
                }
            )
        unsupported = [
            {"mid": t.mid, "kind": t.kind, "reason": "unsupported_codec", "codec": t.unsupported}
            for t in tracks
            if t.unsupported
        ]
        for entry in unsupported:
            logger.info(
                "room %s: %s publishes %s (mid %s) without %s: not forwarded",
                self.room_id,
                participant.user_id,
                entry["kind"],
                entry["mid"],
                entry["codec"],
            )
        return {
            "ok": True,
            "description": {"type": "answer", "sdp": sdp},
            "tracks": published,
            "unsupported": unsupported,
        }

    async def _on_unpublish(self, participant: Participant, payload: dict) -> dict:
        async with participant.publishing:
            await self._close_publish(participant)
        return {"ok": True}

    async def _on_subscribe(self, participant: Participant, payload: dict) -> dict:
        if not participant.receives:
            raise Refusal("forbidden", "this participant only publishes")
        await self._close_subscribe(participant)
        participant.downlink_closed = False
        for producer in self.producers.values():
            if producer.user_id != participant.user_id:
                self._consume(participant, producer)
        return {"ok": True}

    async def _on_subscribe_answer(self, participant: Participant, payload: dict) -> dict:
        description = parse_description(payload.get("description"), "answer")
        session = participant.subscribe
        if session is None or payload.get("session", session.number) != session.number:
            raise Refusal("no_pending_offer", "there is no subscribe offer to answer")
        applied = session.answer(description)
        # The ack tells whether the answer worked; a refused one closes the connection
        # (sfu-connection-closed follows), and sfu-subscribe starts a new one.
        await asyncio.wait_for(asyncio.shield(applied), _ANSWER_APPLY_SECONDS)
        return {"ok": True}

    async def _on_view(self, participant: Participant, payload: dict) -> dict:
        """How the subscriber's app shows its tiles: ``{views: [{mid, height, visible,
        preference?}]}`` (mid: the track's m-line on the subscribe connection; height in
        device pixels). Tracks not listed keep what they had."""
        views = payload.get("views")
        if not isinstance(views, list) or len(views) > _MAX_VIEWS:
            raise Refusal("invalid_payload", f"views must be a list of at most {_MAX_VIEWS}")
        parsed = []
        for view in views:
            if not isinstance(view, dict):
                raise Refusal("invalid_payload", "each view must be an object")
            mid, height = view.get("mid"), view.get("height", 0)
            visible, preference = view.get("visible", True), view.get("preference", "auto")
            if (
                not isinstance(mid, str)
                or isinstance(height, bool)
                or not isinstance(height, int)
                or not 0 <= height <= 20000
                or not isinstance(visible, bool)
                or preference not in ("auto", "low")
            ):
                raise Refusal(
                    "invalid_payload",
                    "a view is {mid: string, height: 0..20000, visible: boolean, "
                    "preference?: 'auto'|'low'}",
                )
            parsed.append((mid, View(height, visible), preference))
        session = participant.subscribe
        by_mid = {o.transceiver.mid: o for o in session.lines if o.transceiver} if session else {}
        for mid, view_, preference in parsed:
            consumer = by_mid.get(mid)
            if consumer is not None and consumer.kind == "video" and consumer.active:
                consumer.view, consumer.preference = view_, preference
                self._apply_view(consumer)
        return {"ok": True}

    async def _on_candidate(self, participant: Participant, payload: dict) -> dict:
        target = payload.get("target")
        candidate = payload.get("candidate")
        if target not in ("publish", "subscribe") or not isinstance(candidate, dict):
            raise Refusal("invalid_payload", "expected {target: 'publish'|'subscribe', candidate}")
        session = participant.publish if target == "publish" else participant.subscribe
        if session is None:
            raise Refusal("not_ready", f"there is no {target} connection")
        await session.add_candidate(candidate)
        return {"ok": True}

    _handlers: dict[str, Callable[[Router, Participant, dict], Awaitable[dict]]] = {
        "sfu-publish": _on_publish,
        "sfu-unpublish": _on_unpublish,
        "sfu-subscribe": _on_subscribe,
        "sfu-subscribe-answer": _on_subscribe_answer,
        "sfu-candidate": _on_candidate,
        "sfu-view": _on_view,
    }
    #: The client events :meth:`handle` accepts (docs/sfu.md).
    CLIENT_EVENTS: tuple[str, ...] = tuple(_handlers)

    # --- producers and consumers ------------------------------------------------------

    def _update_producers(
        self, participant: Participant, tracks: list[OfferedTrack], sources: dict[str, str]
    ) -> None:
        assert participant.publish is not None
        for track in tracks:
            producer_id = f"{participant.user_id}/{track.mid}"
            current = self.producers.get(producer_id)
            tap = participant.publish.taps.get(track.mid)
            source = sources.get(track.track_id or "") or sources.get(track.mid)
            if source is None:
                source = current.source if current else _default_source(track.kind)
            if current is not None and (not track.sending or current.source != source):
                self._remove_producer(current)
                current = None
            if current is None and track.sending and tap is not None:
                producer = Producer(
                    producer_id,
                    participant.user_id,
                    track.mid,
                    track.kind,
                    source,
                    tap,
                    on_arrival=self._packet_arrived,
                    observers=list(self._observers),
                )
                self.producers[producer_id] = producer
                if tap.layered:
                    kbps = {x.rid: x.max_bitrate_kbps for x in self.settings.sfu.simulcast_layers}
                    producer.layers = [LayerState(rid, kbps[rid] * 1000) for rid in tap.rids]
                    producer.observer_target = len(tap.rids) - 1
                    tap.route_layers(producer.receive_layer)
                else:
                    tap.route(producer.receive)  # from now on its packets come straight here
                for other in self.participants.values():
                    if other is not participant:
                        self._consume(other, producer)

    def _remove_producer(self, producer: Producer) -> None:
        self.producers.pop(producer.id, None)
        producer.tap.route(None)
        producer.tap.route_layers(None)
        for observer in producer.observers:
            observer.ended(producer)
        producer.observers.clear()
        for subscriber_id in producer.consumers:
            subscriber = self.participants.get(subscriber_id)
            if subscriber is not None and subscriber.subscribe is not None:
                subscriber.subscribe.remove(producer.id)
        for consumer in producer.consumers.values():
            consumer.track.stop()
        producer.consumers.clear()

    def _consume(self, participant: Participant, producer: Producer) -> None:
        """Starts forwarding a producer to a participant (a new m-line on its downlink)."""
        if participant.downlink_closed or not participant.receives:
            return
        if participant.subscribe is None:
            participant.sessions += 1
            user_id = participant.user_id
            participant.subscribe = SubscribeSession(
                self.settings,
                participant.send,
                participant.sessions,
                on_failure=lambda session, reason, detail: self._spawn(
                    self._subscribe_failed(user_id, session, reason, detail)
                ),
                on_rejected=lambda consumer: self._rejected(user_id, consumer),
                on_full=lambda session: self._spawn(self._renew_subscribe(user_id, session)),
            )
        serial = next(self._serial)
        track = ForwardingTrack(
            producer.kind,
            f"{producer.user_id}-{producer.source}-{serial}",
            self.settings.sfu.subscriber_queue_frames,
            request_keyframe=lambda: self.request_keyframe(producer),
        )
        stream = producer.user_id + ("-screen" if producer.source.startswith("screen") else "")
        consumer = Consumer(
            producer_id=producer.id,
            user_id=producer.user_id,
            source=producer.source,
            kind=producer.kind,
            track=track,
            packer=Packer(on_remb=lambda bitrate: self._on_remb(consumer, bitrate)),
            on_keyframe_request=lambda: self.request_keyframe(producer),
            stream_id=stream,
            rtcp_clock=self._rtcp_clock,
        )
        if producer.layers:
            consumer.target = len(producer.layers) - 1  # until the router's next choice
        producer.consumers[participant.user_id] = consumer
        participant.subscribe.add(consumer)
        self.request_keyframe(producer)

    # --- simulcast ----------------------------------------------------------------------

    def _layered(self, consumer: Consumer) -> bool:
        producer = self.producers.get(consumer.producer_id)
        return producer is not None and bool(producer.layers)

    def _apply_view(self, consumer: Consumer) -> None:
        """A hidden tile's track is paused (costs nothing); shown again, it resumes at a
        keyframe. A simulcast track's layer follows at the next tick."""
        producer = self.producers.get(consumer.producer_id)
        hidden = consumer.view is not None and not consumer.view.visible
        if producer is None or hidden == consumer.paused:
            return
        consumer.paused = hidden
        if hidden:
            consumer.layer = None
            consumer.reason = "hidden"
        elif producer.layers:
            consumer.track.switch_layer()  # resumes at the chosen layer's keyframe
            self._choose_layers(producer, time.monotonic())
            self.request_keyframe(producer)
        else:
            consumer.track.pause_until_keyframe()
            self.request_keyframe(producer)

    def _estimates(self, now: float) -> dict[str, tuple[int, int]]:
        """Each subscriber's latest REMB and what is forwarded to it now (bit/s, every
        track), measuring each consumer's rate on the way (``Consumer.measure``)."""
        out: dict[str, tuple[int, int]] = {}
        for participant in self.participants.values():
            session = participant.subscribe
            if session is None:
                continue
            lines = [o for o in session.lines if o.active]
            for consumer in lines:
                consumer.measure(now)
            rembs = [o.remb for o in lines if o.remb]
            if rembs:
                out[participant.user_id] = (max(rembs), sum(o.rate for o in lines))
        return out

    def _choose_layers(
        self, producer: Producer, now: float, estimates: dict[str, tuple[int, int]] | None = None
    ) -> None:
        """Each consumer's layer (sfu/media/layer_selector.py), and the observers'."""
        for layer in producer.layers:
            layer.measure(now)
        layers = [layer.as_layer(now) for layer in producer.layers]
        best = producer.best_layer(now)
        if best is not None:
            producer.observer_target = best
        forced = self.settings.sfu.simulcast_switch_seconds
        estimates = estimates if estimates is not None else self._estimates(now)
        layer_choice.send_probes(list(producer.consumers.values()), now)
        for subscriber, consumer in producer.consumers.items():
            if consumer.paused:
                consumer.probe_target = None
                continue
            if forced:
                choice = layer_choice.forced(layers, now, forced)
            else:
                # What is left for this track if every other one keeps what it gets.
                known = estimates.get(subscriber)
                if consumer.track.nacked != consumer.nacks_seen:
                    consumer.nacks_seen, consumer.last_nack_at = consumer.track.nacked, now
                estimate = known[0] - (known[1] - consumer.rate) if known else None
                link = known[0] / known[1] if known and known[1] > 0 else None
                choice = layer_choice.decide(consumer, layers, estimate, now, link)
            if layer_choice.apply(consumer, choice, now):
                self.request_keyframe(producer)
            self._announce_layer(subscriber, producer, consumer)

    def _announce_layer(self, subscriber: str, producer: Producer, consumer: Consumer) -> None:
        """Tells the subscriber's app which layer it gets of a track and why
        (``sfu-layer``), when that changes, so that its tile can say it is reduced."""
        reason = "bandwidth" if consumer.reason in ("bandwidth", "probing") else consumer.reason
        reduced_rate = consumer.temporal != ALL_TEMPORAL
        key = (consumer.target, reason, reduced_rate)
        participant = self.participants.get(subscriber)
        if key == consumer.announced or participant is None or consumer.transceiver is None:
            return
        consumer.announced = key
        rids = [layer.rid for layer in producer.layers]
        payload = {
            "mid": consumer.transceiver.mid,
            "userId": consumer.user_id,
            "source": consumer.source,
            "layer": rids[consumer.target] if consumer.target is not None else None,
            "layers": rids,
            "reason": reason,
            "frameRate": "reduced" if reduced_rate else "full",
        }
        self._spawn(_quiet(participant.send("sfu-layer", payload)))

    def _packet_arrived(self) -> None:
        """Every packet of every producer: packets wake the router's periodic work."""
        if time.monotonic() >= self._tick_due:
            self._tick_due = float("inf")  # until the ticker has run
            self._tick_now.set()

    def request_keyframe(self, producer: Producer) -> None:
        """Asks a video publisher for a keyframe, at most once per keyframe_min_interval_ms.

        Requests inside the interval are merged into one sent when it ends.
        """
        if producer.kind != "video" or self.producers.get(producer.id) is not producer:
            return
        now = time.monotonic()
        if now - producer.last_request >= self.settings.sfu.keyframe_min_interval_ms / 1000:
            producer.last_request = now
            producer.request_pending = False
            producer.keyframe_requests += 1
            self._spawn(producer.tap.request_keyframe(producer.keyframe_layers()))
        else:
            producer.request_pending = True

    def _on_remb(self, consumer: Consumer, bitrate: int) -> None:
        consumer.remb = bitrate

    def _remb_cap(self, user_id: str, mid: str) -> int:
        cap = self.settings.sfu.max_video_bitrate_kbps * 1000
        producer = self.producers.get(f"{user_id}/{mid}")
        if producer is not None and producer.layers:
            # Every layer, whatever the subscribers take: each gets the one it can.
            return sum(layer.max_bitrate for layer in producer.layers)
        if producer is not None:
            rembs = [o.remb for o in producer.consumers.values() if o.remb]
            if rembs:
                cap = min(cap, min(rembs))
        return cap

    # --- connections ------------------------------------------------------------------

    async def _close_publish(self, participant: Participant) -> None:
        for producer in list(self.producers.values()):
            if producer.user_id == participant.user_id:
                self._remove_producer(producer)
        publish, participant.publish = participant.publish, None
        if publish is not None:
            await publish.close()

    async def _close_subscribe(self, participant: Participant) -> None:
        subscribe, participant.subscribe = participant.subscribe, None
        for producer in self.producers.values():
            producer.consumers.pop(participant.user_id, None)
        if subscribe is not None:
            await subscribe.close()

    async def _subscribe_failed(
        self, user_id: str, session: SubscribeSession, reason: str, detail: str
    ) -> None:
        """A negotiation of ``session`` failed: close it, if it is still the participant's
        downlink (a stale session's failure must not close its successor)."""
        participant = self.participants.get(user_id)
        if participant is None or participant.subscribe is not session:
            await session.close()
            return
        self._log_closed(participant, "subscribe", reason.replace("_", " ") + f" ({detail})")
        await self._close_subscribe(participant)
        participant.downlink_closed = True
        await self._notify(participant, "subscribe", reason)

    async def _renew_subscribe(self, user_id: str, session: SubscribeSession) -> None:
        """Moves a participant to a fresh downlink (a new ``session``): its old one holds too
        many rejected m-lines, which can never be reused."""
        participant = self.participants.get(user_id)
        if participant is None or participant.subscribe is not session:
            return
        logger.info(
            "room %s: %s subscribe connection renewed (%d rejected m-lines)",
            self.room_id,
            user_id,
            sum(o.rejected for o in session.lines),
        )
        await self._close_subscribe(participant)
        if self.participants.get(user_id) is participant and participant.subscribe is None:
            for producer in self.producers.values():
                if producer.user_id != user_id:
                    self._consume(participant, producer)

    def _rejected(self, user_id: str, consumer: Consumer) -> None:
        """The subscriber rejected a consumer's m-line: stop forwarding it there."""
        producer = self.producers.get(consumer.producer_id)
        if producer is not None and producer.consumers.get(user_id) is consumer:
            del producer.consumers[user_id]
        logger.info(
            "room %s: %s rejected %s's %s (%s): not forwarded on this subscribe connection",
            self.room_id,
            user_id,
            consumer.user_id,
            consumer.source,
            consumer.kind,
        )

    def _log_closed(self, participant: Participant, target: str, cause: str) -> None:
        """One line per connection the server closes, with why (no secrets, no traceback)."""
        level = logging.INFO if cause == "closed by the peer" else logging.WARNING
        logger.log(
            level,
            "room %s: %s %s connection closed: %s",
            self.room_id,
            participant.user_id,
            target,
            cause,
        )

    async def _notify(self, participant: Participant, target: str, reason: str) -> None:
        try:
            await participant.send("sfu-connection-closed", {"target": target, "reason": reason})
        except Exception:
            logger.warning(
                "could not tell %s its %s connection closed", participant.user_id, target
            )

    # --- periodic work ----------------------------------------------------------------

    async def _tick(self) -> None:
        """Keyframe retries, merged requests, connection watchdogs and audio levels.

        Every _TICK seconds while packets arrive, woken by them (:meth:`_on_packet`), so it
        costs the server no wake-up of its own (on a VM a wake-up from idle costs about
        0.2 ms of CPU, more than the tick's work); at least every _IDLE_TICK seconds
        otherwise, for the watchdogs.
        """
        while True:
            try:
                async with asyncio.timeout(_IDLE_TICK):
                    await self._tick_now.wait()
            except TimeoutError:
                pass
            self._tick_now.clear()
            self._tick_due = float("inf")  # packets do not wake a tick that runs
            try:
                await self._tick_once()
            except Exception:
                logger.exception("room %s: media router tick failed", self.room_id)
            self._tick_due = time.monotonic() + _TICK

    async def _tick_once(self) -> None:
        now = time.monotonic()
        if now - self._last_rtcp >= _RTCP_INTERVAL:
            self._last_rtcp = now
            self._rtcp_clock.tick()  # the subscribers' sender reports
        interval = self.settings.sfu.keyframe_min_interval_ms / 1000
        estimates = self._estimates(now)  # also each consumer's rate, shown in stats()
        for producer in list(self.producers.values()):
            lost = producer.tap.expire_losses()
            if producer.kind != "video":
                continue
            if producer.layers:
                self._choose_layers(producer, now, estimates)
                for index, layer_lost in producer.tap.expire_layer_losses():
                    for consumer in producer.consumers.values():
                        if consumer.layer == index:
                            consumer.track.skip_loss(layer_lost)
                    if producer.observer_layer == index:
                        for observer in producer.observers:
                            observer.lost(producer, layer_lost)
            if lost:
                # Lost upstream for good: subscribers who had them skip to the next keyframe.
                for consumer in producer.consumers.values():
                    consumer.track.skip_loss(lost)
                for observer in producer.observers:
                    observer.lost(producer, lost)
            waiting = any(o.track.waiting_keyframe for o in producer.consumers.values()) or any(
                o.wants_keyframe(producer) for o in producer.observers
            )
            if (producer.request_pending or waiting) and now - producer.last_request >= interval:
                self.request_keyframe(producer)
        for participant in list(self.participants.values()):
            for target, session in (
                ("publish", participant.publish),
                ("subscribe", participant.subscribe),
            ):
                if session is None or getattr(participant, target) is not session:
                    continue  # gone, or replaced while this loop awaited
                if self.participants.get(participant.user_id) is not participant:
                    break
                if target == "publish":
                    flowing = carrying(
                        {
                            p.kind
                            for p in self.producers.values()
                            if p.user_id == participant.user_id
                        }
                    )
                else:
                    flowing = participant.subscribe.carrying if participant.subscribe else None
                reason = session.watchdog.expired(session.pc, now, flowing)
                if reason is None:
                    continue
                self._log_closed(participant, target, session.watchdog.cause(session.pc, reason))
                if target == "publish":
                    await self._close_publish(participant)
                else:
                    await self._close_subscribe(participant)
                    participant.downlink_closed = True
                await self._notify(participant, target, reason)
        if now - self._last_levels_push >= self.settings.sfu.audio_level_interval_ms / 1000:
            self._last_levels_push = now
            await self._push_audio_levels()

    async def _push_audio_levels(self) -> None:
        levels = self.audio_levels()
        quantised = {user: round(v["dBov"] / 3) for user, v in levels.items()}
        if quantised == self._last_levels:
            return
        self._last_levels = quantised
        payload = {"levels": [{"userId": user, **value} for user, value in levels.items()]}
        for participant in list(self.participants.values()):
            self._spawn(_quiet(participant.send("sfu-audio-levels", payload)))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _ice_ufrag(sdp: str) -> str | None:
    match = _UFRAG.search(sdp)
    return match.group(1) if match else None


def _default_source(kind: str) -> str:
    return "microphone" if kind == "audio" else "camera"


def _error(code: str, message: str) -> dict:
    return {"ok": False, "error": code, "message": message}


async def _quiet(coro: Awaitable[Any]) -> None:
    try:
        await coro
    except Exception:
        logger.debug("audio level push failed", exc_info=True)
