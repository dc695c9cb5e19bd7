"""python-socketio's server with one gate for every packet a client sends.

python-socketio dispatches a client's event by name to whatever handler carries that name,
``connect`` and ``disconnect`` included, parses payloads with Python's lenient ``json``,
buffers binary attachments as announced, and logs a traceback for a malformed packet. This
subclass takes each Engine.IO message first and hands every client event, well-formed or
not, to one coroutine (``dispatch``) that owns naming, limits and answers.

It is the only module that touches python-socketio's private API (``_handle_eio_message``,
``_handle_connect``, ``_handle_disconnect``, ``_send_packet``, ``_binary_packet``); the
contract tests in tests/test_socketio_contract.py pin what it relies on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from socketio import packet

from sfu.validation import InvalidInput
from sfu.wire import StrictJson, WireError

# (sid, event name or whatever the client put there, payload, problem) -> acknowledgement.
Dispatch = Callable[[str, Any, Any, InvalidInput | None], Awaitable[dict[str, Any]]]
# (eio_sid, kind, detail): a message refused before it could name a socket or an event.
Refused = Callable[[str, str, str], None]


class SocketServer(socketio.AsyncServer):
    """An ``AsyncServer`` whose client events all go through ``dispatch``."""

    def __init__(
        self,
        *,
        dispatch: Dispatch,
        refused: Refused,
        max_depth: Callable[[], int],
        max_payload_bytes: int,
        **kwargs: Any,
    ) -> None:
        codec = StrictJson(max_depth)

        class StrictPacket(packet.Packet):
            json = codec  # this server's packets only: Packet.json is shared by all clients

            def decode(self, encoded_packet: Any) -> int:
                self.problem: str | None = None
                try:
                    return int(super().decode(encoded_packet) or 0)
                except WireError as exc:  # the header (type, id) is read before the payload
                    self.data = None
                    self.problem = str(exc)
                    return 0

        super().__init__(serializer=StrictPacket, **kwargs)
        self._dispatch = dispatch
        self._refused = refused
        self._max_payload = max_payload_bytes
        self._tasks: set[asyncio.Task[Any]] = set()

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        if not isinstance(data, str):
            # A binary frame: no event takes binary data, so attachments are never buffered.
            self._binary_packet.pop(eio_sid, None)
            self._refused(eio_sid, "binary_frame", f"{len(data)} bytes")
            return
        try:
            pkt = self.packet_class(encoded_packet=data)
        except Exception as exc:  # a header python-socketio cannot read
            self._refused(eio_sid, "malformed_packet", str(exc)[:80])
            return
        kind = pkt.packet_type
        if kind == packet.CONNECT:
            if self.manager.sid_from_eio_sid(eio_sid, pkt.namespace or "/") is not None:
                self._refused(eio_sid, "unexpected_packet", "a second CONNECT")
                return
            await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        elif kind == packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
        elif kind in (packet.EVENT, packet.BINARY_EVENT):
            problem = InvalidInput(pkt.problem) if pkt.problem else None
            if kind == packet.BINARY_EVENT:
                problem = InvalidInput("binary attachments are not accepted")
            elif len(data) > self._max_payload and len(data.encode()) > self._max_payload:
                problem = InvalidInput(
                    f"payload is over {self._max_payload} bytes", code="payload_too_large"
                )
            await self._event(eio_sid, pkt, problem)
        else:  # ACK, BINARY_ACK, CONNECT_ERROR: the server never asks a client for an answer
            self._refused(eio_sid, "unexpected_packet", packet.packet_names[kind])

    async def _event(self, eio_sid: str, pkt: Any, problem: InvalidInput | None) -> None:
        namespace = pkt.namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is None or not self.manager.is_connected(sid, namespace):
            self._refused(eio_sid, "not_connected", namespace[:32])
            return
        data = pkt.data
        if problem is None and (not isinstance(data, list) or not data):
            problem = InvalidInput("an event is a list: [name, payload?]")
        name = data[0] if isinstance(data, list) and data else None
        payload = data[1] if isinstance(data, list) and len(data) > 1 else None
        if problem is None and isinstance(data, list) and len(data) > 2:
            problem = InvalidInput("an event carries one payload")
        task = asyncio.ensure_future(self._answer(eio_sid, sid, pkt, name, payload, problem))
        self._tasks.add(task)  # handlers run concurrently, as python-socketio's async_handlers
        task.add_done_callback(self._tasks.discard)

    async def _answer(
        self,
        eio_sid: str,
        sid: str,
        pkt: Any,
        name: Any,
        payload: Any,
        problem: InvalidInput | None,
    ) -> None:
        ack = await self._dispatch(sid, name, payload, problem)
        if pkt.id is not None:
            await self._send_packet(
                eio_sid,
                self.packet_class(packet.ACK, namespace=pkt.namespace, id=pkt.id, data=[ack]),
            )
