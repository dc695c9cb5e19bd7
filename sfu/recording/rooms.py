"""The recordings of rooms: a :class:`~sfu.recording.Recorder` bound to a room's router
and people, from start to a finished file.

A P2P room has no router: while it is recorded it gets one from :class:`Uplinks` (its
participants publish to it besides their mesh; the recorder is its only consumer), given
back when the recording ends.

The recorder is one more observer of the room's router (``Router.add_sink``: frames made
from the same packets as the consumers', and the tracks that end); this module tells it the
joins, leaves and the active speaker, starts and stops it (asked by the edges, or by
``recording.auto_start``), tells the room its state through ``broadcast``, keeps each
room's download token and which recordings it grants. The Socket.IO events and REST routes
that drive it are in sfu/server/recording_events.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sfu.media import Router
from sfu.media.speaker import SPEAKING_LEVEL, ActiveSpeaker
from sfu.recording import Recorder, RecordingStore, finalize
from sfu.recording import store as store_mod
from sfu.recording.webhook import Webhooks
from sfu.refusal import Refusal
from sfu.rooms import Participant, Room, RoomRegistry
from sfu.settings import Settings

log = logging.getLogger("sfu.recording.rooms")

LAYOUTS = ("grid", "speaker", "audio")  # audio: the mixed audio only (recording.audio_format)
POLL_SECONDS = 0.25  # the speaker and auto_start are checked this often
SHUTDOWN_FINALIZE_SECONDS = 10.0  # finalize commands still running then are killed
MAX_GRANTS = 10_000  # recording id -> room token entries kept for downloads


class Uplinks(Protocol):
    """Routers for P2P rooms while they are recorded (sfu/server/media_events.py)."""

    async def open_uplink(self, room: Room) -> Router: ...

    async def close_uplink(self, room: Room) -> None: ...


@dataclass
class Active:
    """A recording in progress in one room."""

    room_id: str
    recorder: Recorder
    started_by: str | None
    started_by_name: str | None
    started_at: int  # ms since the epoch
    layout: str
    remove_sink: Callable[[], None]
    router: Router
    stage: ActiveSpeaker = field(default_factory=ActiveSpeaker)  # the room's speaker
    finished: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def state(self) -> dict[str, Any]:
        return {
            "recording": True,
            "recordingId": self.recorder.id,
            "startedBy": self.started_by,
            "startedByName": self.started_by_name,
            "startedAt": self.started_at,
            "layout": self.layout,
        }


def parse_layout(data: Any) -> str | None:
    """``{layout?}`` from a client or REST body; anything else is refused."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise Refusal("invalid_payload", "payload must be an object like {layout?}")
    layout = data.get("layout")
    if layout is not None and layout not in LAYOUTS:
        raise Refusal("invalid_payload", f"layout must be one of {', '.join(LAYOUTS)}")
    return layout


class RoomRecordings:
    """Recordings of the rooms of one server (a P2P room's router comes from ``uplinks``)."""

    def __init__(
        self,
        settings: Settings,
        rooms: RoomRegistry,
        broadcast: Callable[[str, dict[str, Any]], Awaitable[None]],
        uplinks: Uplinks,
    ) -> None:
        self.settings = settings
        self.rooms = rooms
        self.uplinks = uplinks
        self._send_state = broadcast  # (room id, recording-state) to the room
        self.store = RecordingStore.from_settings(settings.recording)
        self.store.live = self._live
        self.active: dict[str, Active] = {}
        # Recording id -> its recorder, from start until its file may be deleted: what a
        # recordings list shows of it while it records and while it is finished.
        self._recorders: dict[str, Recorder] = {}
        # recording id -> digest of the token of the room it was made in (downloads by
        # participants), and how many recordings each digest grants (a token stays known
        # while its room exists or while it grants something).
        self._grants: dict[str, bytes] = {}
        self._granted: Counter[bytes] = Counter()
        self._starting: set[str] = set()
        self._stopping: set[asyncio.Task[Any]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._closed = False  # server shutdown: no new recordings
        self.webhooks = Webhooks(lambda: self.settings.recording)
        self._finalizing: set[asyncio.Task[Any]] = set()
        rooms.on_room_created.append(self._room_created)
        rooms.on_room_deleted.append(self._room_deleted)

    # -- room lifecycle --------------------------------------------------------------------
    def _room_created(self, room: Room) -> None:
        room.recording_token = secrets.token_urlsafe(24)

    def _room_deleted(self, room: Room) -> None:
        active = self.active.get(room.room_id)
        if active is not None:
            # Stamp the end now (synchronously): later leave events must not extend it.
            active.recorder.request_stop("room closed")
            self._spawn(self._finish(active))

    def state(self, room_id: str) -> dict[str, Any]:
        active = self.active.get(room_id)
        return active.state() if active is not None else {"recording": False}

    def join_extras(self, room: Room, participant: Participant) -> dict[str, Any]:
        extras: dict[str, Any] = {"recording": self.state(room.room_id)}
        if room.recording_token is not None:
            extras["recordingToken"] = room.recording_token
        return extras

    async def participant_joined(self, room: Room, participant: Participant) -> None:
        active = self.active.get(room.room_id)
        if active is not None:
            active.recorder.participant_joined(participant.user_id, participant.user_name)

    async def participant_left(self, room: Room, participant: Participant) -> None:
        active = self.active.get(room.room_id)
        if active is not None:
            active.recorder.participant_left(participant.user_id)

    # -- start and stop --------------------------------------------------------------------
    async def start(
        self, room_id: str, started_by: str | None = None, layout: str | None = None
    ) -> Active:
        """Start recording a room; raises :class:`~sfu.refusal.Refusal` with the protocol's code."""
        room = self.rooms.get(room_id)
        if room is None:
            raise Refusal("unknown_room", "no such room")
        if self._closed:
            raise Refusal("recording_failed", "the server is shutting down")
        if room_id in self.active or room_id in self._starting:
            raise Refusal("already_recording", "this room is already being recorded")
        if layout is not None and layout not in LAYOUTS:
            raise Refusal("invalid_payload", f"layout must be one of {', '.join(LAYOUTS)}")
        self._starting.add(room_id)  # a second start while the file opens is refused
        try:
            router = room.router
            if room.mode != "sfu":
                router = await self.uplinks.open_uplink(room)
            if not isinstance(router, Router):
                raise Refusal("not_sfu_room", "this room has no media router")
            return await self._start(room, router, started_by, layout)
        finally:
            self._starting.discard(room_id)
            if room_id not in self.active:
                await self._release_uplink(room)

    async def _release_uplink(self, room: Room) -> None:
        """A P2P room's router goes once no recording runs or starts in the room."""
        if room.mode != "sfu" and room.room_id not in self.active:
            if room.room_id not in self._starting:
                await self.uplinks.close_uplink(room)

    async def _start(
        self, room: Room, router: Router, started_by: str | None, layout: str | None
    ) -> Active:
        room_id = room.room_id
        base = self.settings.recording
        chosen = layout or base.layout
        settings = base.model_copy(update={"layout": chosen})
        loop = asyncio.get_running_loop()
        holder: list[Active] = []
        starter = room.participants.get(started_by) if started_by is not None else None
        info = {
            "roomName": room.name,
            "startedBy": started_by,
            "startedByName": starter.user_name if starter is not None else None,
            "stoppedBy": None,
            "stoppedByName": None,
        }

        def on_stopped(reason: str) -> None:
            if holder:  # set once the recording is active
                self._stopped(holder[0], reason)

        recorder = Recorder(
            room_id,
            settings,
            on_stopped=on_stopped,
            request_keyframe=lambda user_id, source: self._keyframe(router, user_id, source),
            loop=loop,
            info=info,
        )
        # Those in the room now are in the recording from its first picture; who comes or
        # goes while the file opens is told below.
        present = {p.user_id: p.user_name for p in room.participants.values()}
        try:
            # Opening the file can block on a slow disk: not on the event loop.
            await asyncio.to_thread(recorder.start, list(present.items()))
        except Exception as exc:
            log.warning("cannot start recording of %s: %s", room_id, exc)
            raise Refusal("recording_failed", f"cannot start the recording: {exc}") from exc
        if self.rooms.get(room_id) is not room or self._closed:
            # The room (or the server) went away while the file was opened: keep nothing.
            await recorder.stop_async("room closed")
            if recorder.id is not None:
                await asyncio.to_thread(self.store.delete, recorder.id)
            raise Refusal("unknown_room", "the room is gone")
        assert recorder.id is not None
        self.store.active.add(recorder.id)
        self._recorders[recorder.id] = recorder
        token = room.recording_token
        if isinstance(token, str):
            self._grant(recorder.id, token)
        for p in room.participants.values():
            if p.user_id not in present:
                recorder.participant_joined(p.user_id, p.user_name)
        for user_id in present.keys() - room.participants.keys():
            recorder.participant_left(user_id)

        active = Active(
            room_id=room_id,
            recorder=recorder,
            started_by=started_by,
            started_by_name=info["startedByName"],
            started_at=int(time.time() * 1000),
            layout=chosen,
            # The router's EncodedFrame as is: no av.Packet and no copy per frame on the loop.
            remove_sink=router.add_sink(recorder.on_packet, on_ended=recorder.track_ended),
            router=router,
        )
        holder.append(active)
        self.active[room_id] = active
        self._ensure_poller()
        log.info("recording %s of room %s started by %s", recorder.id, room_id, started_by)
        self.webhooks.notify("started", recorder.metadata())
        await self._broadcast(room_id, active.state())
        if recorder.state in ("stopped", "error"):
            # It failed before ``holder`` was set (its callback found nobody): end it now.
            self._stopped(active, recorder.stop_reason or "stopped")
        return active

    async def stop(
        self, room_id: str, reason: str = "stopped", by: Participant | None = None
    ) -> dict[str, Any]:
        """Stop a room's recording and wait until its file is complete; returns its metadata.

        ``by``: the participant who stops it (None: the administrator)."""
        active = self.active.get(room_id)
        if active is None:
            raise Refusal("not_recording", "this room is not being recorded")
        if by is not None:
            active.recorder.stopped_by(by.user_id, by.user_name)
        active.recorder.request_stop(reason)
        await self._finish(active)
        return active.recorder.metadata()

    async def _finish(self, active: Active) -> None:
        await active.recorder.stop_async(active.recorder.stop_reason or "stopped")
        self._stopped(active, active.recorder.stop_reason or "stopped")
        await active.done.wait()

    def _stopped(self, active: Active, reason: str) -> None:
        """The recorder ended (asked to, or failed): detach it and tell the room. Once."""
        if active.finished:
            return
        active.finished = True
        active.remove_sink()
        if self.active.get(active.room_id) is active:
            del self.active[active.room_id]
        recorder = active.recorder
        failed = recorder.state == "error"
        (log.warning if failed else log.info)(
            "recording %s of room %s ended: %s", recorder.id, active.room_id, reason
        )
        state: dict[str, Any] = {"recording": False, "recordingId": recorder.id, "reason": reason}
        if failed:
            state["error"] = True

        async def tell() -> None:
            command = self.settings.recording.finalize_command
            try:
                # The worker may still be closing the file: wait before it counts as finished.
                await recorder.stop_async(reason)
                await self._broadcast(active.room_id, state)
                # A P2P room's uplink closes after the room is told (its apps close theirs
                # on the state, instead of repairing a connection the server dropped).
                room = self.rooms.get(active.room_id)
                if room is not None:
                    await self._release_uplink(room)
            finally:
                if not command:
                    self._released(recorder)
                # The stop is answered now: the finalize command and the webhook come after.
                active.done.set()
                if command:
                    task = asyncio.ensure_future(self._finalize(recorder, list(command)))
                    self._finalizing.add(task)
                    task.add_done_callback(self._finalizing.discard)
                else:
                    self._notify_end(recorder, recorder.metadata())
                    await asyncio.to_thread(self.apply_retention)

        self._spawn(tell())

    def _released(self, recorder: Recorder) -> None:
        """The file may be deleted (by the API or retention) from now on."""
        if recorder.id is not None:
            self.store.active.discard(recorder.id)
            self._recorders.pop(recorder.id, None)

    def _live(self, recording_id: str) -> dict[str, Any] | None:
        """A running recorder's status (and, finishing, its progress) for the store; once
        its file is complete the store's own answer (``finishing`` while still active)."""
        recorder = self._recorders.get(recording_id)
        if recorder is None or recorder.state != "recording":
            return None
        return recorder.live_status()

    def _notify_end(self, recorder: Recorder, meta: dict[str, Any]) -> None:
        self.webhooks.notify("failed" if recorder.state == "error" else "ended", meta)

    async def _finalize(self, recorder: Recorder, command: list[str]) -> None:
        """Run the finalize command on the complete file, record how it went in the sidecar,
        then send the end webhook (with that sidecar). The file stays active meanwhile."""
        meta = recorder.metadata()
        path = recorder.path
        try:
            if path is None or not path.is_file():
                result: dict[str, Any] = {"error": "no file to finalize"}
            else:
                timeout = self.settings.recording.finalize_timeout_seconds
                result = await finalize.run(command, path, timeout, meta)
        except asyncio.CancelledError:
            result = {"error": "killed: the server shut down"}
            await asyncio.to_thread(self._record_finalize, recorder, meta, result)
            self._released(recorder)
            self._notify_end(recorder, meta)
            raise
        except Exception as exc:
            log.exception("finalize of recording %s", recorder.id)
            result = {"error": f"finalize failed: {exc}"}
        failed = result.get("error") or result.get("exit_status")
        level = logging.WARNING if failed else logging.INFO
        log.log(
            level,
            "recording %s finalized: exit %s%s%s",
            recorder.id,
            result.get("exit_status"),
            " (timed out)" if result.get("timed_out") else "",
            f" ({result['error']})" if result.get("error") else "",
        )
        meta = await asyncio.to_thread(self._record_finalize, recorder, meta, result)
        self._released(recorder)
        self._notify_end(recorder, meta)
        await asyncio.to_thread(self.apply_retention)

    def _record_finalize(
        self, recorder: Recorder, meta: dict[str, Any], result: dict[str, Any]
    ) -> dict[str, Any]:
        """The sidecar with ``finalize`` added; written unless the command removed it."""
        current = self.store.get(recorder.id) if recorder.id is not None else None
        out = dict(current if current is not None else meta)
        out["finalize"] = result
        if current is not None:
            try:
                store_mod.write_sidecar(self.store.directory, out)
            except OSError as exc:
                log.warning("recording %s: cannot write the finalize result: %s", out["id"], exc)
        return out

    def apply_retention(self) -> list[str]:
        s = self.settings.recording
        self.store.retention_days, self.store.max_total_mb = s.retention_days, s.max_total_mb
        try:
            return self.store.apply_retention()
        except OSError as exc:
            log.warning("retention: %s", exc)
            return []

    def _grant(self, recording_id: str, token: str) -> None:
        self._ungrant(recording_id)
        digest = _digest(token)
        self._grants[recording_id] = digest
        self._granted[digest] += 1
        while len(self._grants) > MAX_GRANTS:
            self._ungrant(next(iter(self._grants)))

    def _ungrant(self, recording_id: str) -> None:
        digest = self._grants.pop(recording_id, None)
        if digest is not None:
            self._granted[digest] -= 1
            if self._granted[digest] <= 0:
                del self._granted[digest]

    @staticmethod
    def _keyframe(router: Router, user_id: str, source: str) -> None:
        for producer in list(router.producers.values()):
            if producer.user_id == user_id and producer.source == source:
                router.request_keyframe(producer)

    async def settings_changed(self, keys: list[str]) -> None:
        """A live ``recording.layout`` change also re-lays out every running recording."""
        if "recording.layout" not in keys:
            return
        layout = self.settings.recording.layout
        for active in list(self.active.values()):
            if active.finished or active.layout == layout:
                continue
            if (layout == "audio") != (active.layout == "audio"):
                continue  # a file's streams are fixed: video stays video, audio stays audio
            active.recorder.set_layout(layout)
            active.layout = layout
            log.info("recording %s: layout now %s", active.recorder.id, layout)
            await self._broadcast(active.room_id, active.state())

    async def _broadcast(self, room_id: str, state: dict[str, Any]) -> None:
        await self._send_state(room_id, state)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def close(self) -> None:
        """Server shutdown: finish every recording's file before the process exits."""
        self._closed = True
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        for active in list(self.active.values()):
            active.recorder.request_stop("server shutdown")
            self._spawn(self._finish(active))
        while self._stopping:
            await asyncio.gather(*list(self._stopping), return_exceptions=True)
        if self._finalizing:
            # Give running finalize commands a moment; the rest are killed (and say so).
            tasks = list(self._finalizing)
            _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_FINALIZE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.webhooks.close()

    # -- the poller: speaker, auto_start --------------------------------------------------
    def _ensure_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.ensure_future(self._poll_forever())

    async def start_background(self) -> None:
        """Server start-up: recordings a crash interrupted get their real duration, and the
        poller runs from the start when auto_start may need it."""
        try:
            recovered = await asyncio.to_thread(self.store.recover)
        except OSError as exc:  # an unreadable directory must not stop the server
            log.warning("could not recover interrupted recordings: %s", exc)
        else:
            if recovered:
                log.info("recovered %d interrupted recording(s): %s", len(recovered), recovered)
        self._ensure_poller()

    async def _poll_forever(self) -> None:
        while True:
            try:
                await self._poll_once()
            except Exception:
                log.exception("recording poll failed")
            await asyncio.sleep(POLL_SECONDS)

    async def _poll_once(self) -> None:
        for active in list(self.active.values()):
            if active.finished:
                continue
            self._update_speaker(active)
        if not self.settings.recording.auto_start:
            return
        for room in list(self.rooms.rooms.values()):
            router = room.router
            # An SFU room once someone publishes; a P2P room once someone is in it (its
            # participants publish to the server only while it is recorded).
            ready = room.mode != "sfu" or (isinstance(router, Router) and bool(router.producers))
            if (
                room.room_id in self.active
                or room.room_id in self._starting
                or room.recording_auto_started
                or not room.participants
                or not ready
            ):
                continue
            # Once per room: someone who stops the auto-started recording means it.
            room.recording_auto_started = True
            try:
                await self.start(room.room_id, started_by=None)
            except Refusal as exc:
                log.warning("auto_start of %s refused: %s", room.room_id, exc.message)

    def _update_speaker(self, active: Active) -> None:
        """The room's speaker (RFC 6464 levels from the router, the one rule of
        sfu/media/speaker.py) takes the recording's stage. Speaking: a level of -40 dBov or
        more, or the sender's voice flag (not every sender sets it)."""
        levels = {
            user: max(v["level"], SPEAKING_LEVEL) if v.get("voice") else v["level"]
            for user, v in active.router.audio_levels().items()
        }
        before = active.stage.speaker
        speaker = active.stage.update(levels, time.monotonic())
        if speaker != before:
            active.recorder.set_active_speaker(speaker)

    # -- credentials -----------------------------------------------------------------------
    def reads_for(self, given: str) -> Callable[[dict[str, Any]], bool] | None:
        """What a room token may read: the recordings of its room; None for an unknown token."""
        if not given or not self._known_token(given):
            return None
        digest = _digest(given)
        return lambda meta: self._grants.get(str(meta.get("id"))) == digest

    def _known_token(self, given: str) -> bool:
        """A live SFU room's token (constant-time compares) or one that grants a recording.

        Grants are looked up by SHA-256 digest: a timing difference of that lookup tells
        nothing about the token itself.
        """
        if _digest(given) in self._granted:
            return True
        raw, found = _raw(given), False
        for room in list(self.rooms.rooms.values()):
            token = room.recording_token
            if isinstance(token, str) and hmac.compare_digest(_raw(token), raw):
                found = True
        return found


def _raw(token: str) -> bytes:
    return token.encode("utf-8", "surrogatepass")  # whatever a query string decoded to


def _digest(token: str) -> bytes:
    return hashlib.sha256(_raw(token)).digest()


__all__ = ["RoomRecordings", "parse_layout"]
