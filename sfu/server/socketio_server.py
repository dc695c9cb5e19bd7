"""python-socketio's server with one gate for every packet a client sends.

python-socketio dispatches a client's event by name to whatever handler carries that name,
``connect`` and ``disconnect`` included, parses payloads with Python's lenient ``json``,
buffers binary attachments as announced, and logs a traceback for a malformed packet;
python-engineio lets a malformed Engine.IO packet escape its websocket loop as an
exception. This module takes each Engine.IO message first and hands every client event,
well-formed or not, to one coroutine (``dispatch``) that owns naming, limits and answers;
Engine.IO packets that cannot be read become no-ops; Engine.IO sessions are capped per
client address; both libraries log through a logger that never prints a traceback and
says each kind of complaint once per interval.

It is the only module that touches python-socketio's and python-engineio's private API
(``_handle_eio_message``, ``_handle_eio_connect``, ``_handle_eio_disconnect``,
``_handle_connect``, ``_handle_disconnect``, ``_send_packet``, ``_binary_packet``, and the
``packet`` module that ``engineio.async_socket`` and ``engineio.payload`` decode with);
the contract tests in tests/server/test_socketio_contract.py pin what it relies on.
"""

from __future__ import annotations

import asyncio
import logging
import time
import types
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import engineio.async_socket
import engineio.packet
import engineio.payload
import socketio
from socketio import packet

from sfu.refusal import Refusal
from sfu.wire import StrictJson, WireError

# (sid, event name or whatever the client put there, payload, problem) -> acknowledgement.
Dispatch = Callable[[str, Any, Any, Refusal | None], Awaitable[dict[str, Any]]]
# (eio_sid, kind, detail): a message refused before it could name a socket or an event.
Refused = Callable[[str, str, str], None]

LOG_INTERVAL_SECONDS = 10.0


class _TolerantEnginePacket(engineio.packet.Packet):
    """An Engine.IO packet that always decodes: what cannot be read is a NOOP, which
    Engine.IO's socket ignores, instead of an exception out of its websocket loop (which
    aiohttp logs with a traceback) or an unknown type (a traceback of Engine.IO's own)."""

    def decode(self, encoded_packet: Any) -> None:
        try:
            super().decode(encoded_packet)
            kind: Any = getattr(self, "packet_type", None)  # untyped in engineio
            readable = isinstance(kind, int) and 0 <= kind < len(engineio.packet.packet_names)
        except Exception:
            readable = False
        if not readable:
            self.packet_type, self.data, self.binary = engineio.packet.NOOP, None, False
            _quiet.warning("ignored an Engine.IO packet that cannot be read")


def _tolerant_packet_module() -> types.ModuleType:
    module = types.ModuleType(engineio.packet.__name__)
    module.__dict__.update(vars(engineio.packet))
    module.__dict__["Packet"] = _TolerantEnginePacket
    return module


# Server side only: engineio's clients decode in engineio.async_client, untouched.
engineio.async_socket.packet = _tolerant_packet_module()
engineio.payload.packet = engineio.async_socket.packet


class QuietLog(logging.LoggerAdapter):
    """The libraries' logger: warnings and errors only, never a traceback, each message
    (by its format string) at most once per interval with the count it stands for."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, {})
        self._seen: dict[str, list[float]] = {}

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if level < logging.WARNING or not self.logger.isEnabledFor(level):
            return
        kwargs.pop("exc_info", None)
        kwargs.pop("stack_info", None)
        key = str(msg)[:200]
        now = time.monotonic()
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < LOG_INTERVAL_SECONDS:
            entry[1] += 1
            return
        if entry is not None and entry[1]:
            msg = f"{msg} (and {int(entry[1])} more like it)"
        if len(self._seen) > 256:  # bounded: library messages are few, arguments vary
            self._seen.clear()
        self._seen[key] = [now, 0]
        try:
            self.logger.log(level, msg, *args, **kwargs)
        except Exception:  # a library's bad format arguments must not raise here
            self.logger.log(level, "%s", key)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return msg, kwargs


_quiet = QuietLog(logging.getLogger("sfu.socketio"))


class SocketServer(socketio.AsyncServer):
    """An ``AsyncServer`` whose client events all go through ``dispatch``."""

    def __init__(
        self,
        *,
        dispatch: Dispatch,
        refused: Refused,
        max_depth: Callable[[], int],
        max_payload_bytes: int,
        address_of: Callable[[dict[str, Any]], str],
        max_per_address: Callable[[], int],
        **kwargs: Any,
    ) -> None:
        codec = StrictJson(max_depth)

        class StrictPacket(packet.Packet):
            json = codec  # this server's packets only: Packet.json is shared by all clients
            problem: str | None = None  # set by decode (an empty message is not decoded)

            def decode(self, encoded_packet: Any) -> int:
                self.problem: str | None = None
                try:
                    return int(super().decode(encoded_packet) or 0)
                except WireError as exc:  # the header (type, id) is read before the payload
                    self.data = None
                    self.problem = str(exc)
                    return 0

        super().__init__(serializer=StrictPacket, logger=_quiet, engineio_logger=_quiet, **kwargs)
        self._dispatch = dispatch
        self._address_of = address_of
        self._max_per_address = max_per_address
        self._addresses: dict[str, str] = {}  # eio sid -> client address
        self._per_address: Counter[str] = Counter()
        self._refused = refused
        self._max_payload = max_payload_bytes
        self._tasks: set[asyncio.Task[Any]] = set()

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        """An Engine.IO session opens: at most ``max_per_address()`` per client address,
        whether or not it goes on to connect a namespace. Refused: HTTP 401, an error body."""
        address = self._address_of(environ)
        cap = self._max_per_address()
        if cap and self._per_address[address] >= cap:
            self._refused(eio_sid, "too_many_connections", address)
            # Engine.IO answers 401 with this as its JSON body (the REST error shape).
            return {
                "error": "too_many_connections",
                "message": f"too many connections from your address (at most {cap})",
            }
        self._per_address[address] += 1
        self._addresses[eio_sid] = address
        await super()._handle_eio_connect(eio_sid, environ)
        return None

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        try:
            await super()._handle_eio_disconnect(eio_sid, reason)
        finally:
            address = self._addresses.pop(eio_sid, None)
            if address is not None:
                self._per_address[address] -= 1
                if self._per_address[address] <= 0:
                    del self._per_address[address]

    # With a cluster: False while Redis is known to be away, so emits and disconnects stay on
    # this node at once instead of each waiting for a publish that fails (the live rooms of
    # a node go on without Redis).
    queue_reachable: Callable[[], bool] = staticmethod(lambda: True)

    async def emit(self, *args: Any, **kwargs: Any) -> None:
        if not self.queue_reachable():
            kwargs["ignore_queue"] = True
        await super().emit(*args, **kwargs)

    async def disconnect(self, sid: str, namespace: str | None = None, **kwargs: Any) -> None:
        if not self.queue_reachable():
            kwargs["ignore_queue"] = True
        await super().disconnect(sid, namespace=namespace, **kwargs)

    def address(self, eio_sid: str) -> str:
        """The client address of an Engine.IO session ("?" if unknown)."""
        return self._addresses.get(eio_sid, "?")

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
            problem = Refusal("invalid_payload", pkt.problem) if pkt.problem else None
            if kind == packet.BINARY_EVENT:
                problem = Refusal("invalid_payload", "binary attachments are not accepted")
            elif len(data) > self._max_payload and len(data.encode()) > self._max_payload:
                problem = Refusal("payload_too_large", f"payload is over {self._max_payload} bytes")
            await self._event(eio_sid, pkt, problem)
        else:  # ACK, BINARY_ACK, CONNECT_ERROR: the server never asks a client for an answer
            names = packet.packet_names
            self._refused(
                eio_sid,
                "unexpected_packet",
                names[kind] if 0 <= kind < len(names) else str(kind)[:8],
            )

    async def _event(self, eio_sid: str, pkt: Any, problem: Refusal | None) -> None:
        namespace = pkt.namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is None or not self.manager.is_connected(sid, namespace):
            self._refused(eio_sid, "not_connected", namespace[:32])
            return
        data = pkt.data
        if problem is None and (not isinstance(data, list) or not data):
            problem = Refusal("invalid_payload", "an event is a list: [name, payload?]")
        name = data[0] if isinstance(data, list) and data else None
        payload = data[1] if isinstance(data, list) and len(data) > 1 else None
        if problem is None and isinstance(data, list) and len(data) > 2:
            problem = Refusal("invalid_payload", "an event carries one payload")
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
        problem: Refusal | None,
    ) -> None:
        ack = await self._dispatch(sid, name, payload, problem)
        if pkt.id is not None:
            await self._send_packet(
                eio_sid,
                self.packet_class(packet.ACK, namespace=pkt.namespace, id=pkt.id, data=[ack]),
            )
