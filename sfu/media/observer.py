"""Observers: what watches a room's media in the router's fan-out, beside the consumers.

:func:`audio_levels` reads each microphone producer's latest RFC 6464 level (kept by its
receiver, per packet, at no extra cost): the room's ``sfu-audio-levels`` and the active
speaker (sfu/media/speaker.py) are made from it.

A :class:`FrameObserver` turns each producer's packets (the same packets, in the same loop,
as the consumers get: the fast receive path stays in use while a room records) into
encoded frames for a sink, the recorder, with one
:class:`~sfu.media.rtp.assembler.FrameAssembler` per producer. It hears of losses the
router's loss tracker gives up and of producers that end, and asks for a keyframe while a
producer's frames wait for one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from aiortc.rtp import RtpPacket

from .frames import EncodedFrame
from .producer import Producer
from .rtp.assembler import FrameAssembler

logger = logging.getLogger(__name__)

# (user_id, source, kind, frame), called on the event loop; it must not block.
Sink = Callable[[str, str, str, EncodedFrame], None]
# The sink learns a track has ended: (user_id, source, kind).
Ended = Callable[[str, str, str], None]


class FrameObserver:
    """Frames of every producer of a room, for one sink."""

    def __init__(
        self,
        sink: Sink,
        request_keyframe: Callable[[Producer], None],
        on_ended: Ended | None = None,
    ) -> None:
        self.sink = sink
        self._request_keyframe = request_keyframe
        self._on_ended = on_ended
        self._assemblers: dict[Producer, FrameAssembler | None] = {}

    def _assembler(self, producer: Producer, payload_type: int) -> FrameAssembler | None:
        codec = producer.tap.codec(payload_type)
        if codec is None:
            return None  # not negotiated: aiortc drops it too
        try:
            assembler = FrameAssembler(codec.name, producer.kind, codec.clockRate)
        except ValueError:  # a video codec the assembler does not know: no frames
            assembler = None
        self._assemblers[producer] = assembler
        return assembler

    def on_packet(self, producer: Producer, packet: RtpPacket, starts_keyframe: bool) -> None:
        if producer in self._assemblers:
            assembler = self._assemblers[producer]
        else:
            assembler = self._assembler(producer, packet.payload_type)
        if assembler is None:
            return
        was_broken = assembler.broken
        frames = assembler.push(
            packet.sequence_number,
            packet.timestamp,
            bool(packet.marker),
            packet.payload,
            producer.sender_report,
        )
        self._emit(producer, frames)
        if assembler.broken and not was_broken and producer.kind == "video":
            self._request_keyframe(producer)

    def lost(self, producer: Producer, seqs: list[int]) -> None:
        """Numbers the router's loss tracker gave up: the frames they belonged to go."""
        assembler = self._assemblers.get(producer)
        if assembler is not None:
            self._emit(producer, assembler.lost(seqs, producer.sender_report))

    def wants_keyframe(self, producer: Producer) -> bool:
        """Whether the producer's frames wait for a keyframe: a loss broke them, or the
        observers are to move to another simulcast layer (the best one arriving changed),
        which they can only enter at a keyframe of it. Publishers send those only when
        asked: unasked, a recording whose publisher's top layer paused and came back kept
        the lower layer while no subscriber took the top one."""
        if producer.kind != "video":
            return False
        if producer.observer_target not in (None, producer.observer_layer):
            return True
        assembler = self._assemblers.get(producer)
        return assembler is not None and assembler.broken

    def switched(self, producer: Producer) -> None:
        """Another simulcast layer starts at its keyframe: a new assembler (its own
        numbering and timestamps; the sender reports place its frames in time)."""
        self._assemblers.pop(producer, None)

    def ended(self, producer: Producer) -> None:
        """The producer is gone (unpublished, left, replaced): its frames end here."""
        self._assemblers.pop(producer, None)
        if self._on_ended is not None:
            self._on_ended(producer.user_id, producer.source, producer.kind)

    def _emit(self, producer: Producer, frames: list[EncodedFrame]) -> None:
        for frame in frames:
            try:
                self.sink(producer.user_id, producer.source, producer.kind, frame)
            except Exception:  # the sink's bug must not stop forwarding
                logger.exception("media sink failed")


def audio_levels(producers: Iterable[Producer], now: float) -> dict[str, dict[str, Any]]:
    """Each publishing participant's latest microphone level (RFC 6464, from RTP).

    ``{userId: {"level": 0..1, "dBov": -127..0, "voice": bool}}``; silence if the publisher
    sent no level in the last second.
    """
    levels: dict[str, dict[str, Any]] = {}
    for producer in producers:
        if producer.kind != "audio" or producer.source != "microphone":
            continue
        tap = producer.tap
        vad, dbov = False, 127
        if tap.audio_level is not None and now - tap.audio_level_time < 1.0:
            vad, dbov = tap.audio_level
        levels[producer.user_id] = {
            "level": round(10 ** (-dbov / 20), 4),
            "dBov": -dbov,
            "voice": vad,
        }
    return levels
