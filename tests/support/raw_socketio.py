"""A raw Engine.IO v4 / Socket.IO v5 client over one aiohttp websocket.

python-socketio's own client cannot send what an attacker sends (a ``NaN`` literal, a
truncated packet, a binary attachment nobody asked for, an event named ``disconnect``), and
it would silently accept what a browser cannot parse. This one writes any text or binary
frame, answers the server's pings, and checks every frame it receives as strict JSON (no
``NaN``/``Infinity``), recording each violation instead of raising in its reader task.

Frames on the wire (websocket transport, no polling):

- Engine.IO: ``0{open}``, ``2`` ping (answered ``3``), ``4<socket.io packet>``, ``1`` close.
- Socket.IO: ``<type>[<n>-][/<nsp>,][<id>][<json>]`` with type 0 CONNECT, 1 DISCONNECT,
  2 EVENT, 3 ACK, 4 CONNECT_ERROR, 5 BINARY_EVENT, 6 BINARY_ACK.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = range(7)


class Raw:
    """JSON text put into a payload as is (``Raw("NaN")``, ``Raw("1e999")``, ``Raw("[[[]]]")``)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        shown = self.text if len(self.text) <= 60 else f"{self.text[:40]}...({len(self.text)})"
        return f"Raw({shown!r})"


def dumps(value: Any) -> str:
    """JSON the way a hostile client writes it: ``Raw`` text spliced in, NaN allowed,
    non-ASCII escaped (so a lone surrogate travels as ``\\ud800``, valid UTF-8 on the wire)."""
    raws: list[str] = []

    def default(obj: Any) -> Any:
        if isinstance(obj, Raw):
            raws.append(obj.text)
            return f"\x00raw{len(raws) - 1}\x00"
        raise TypeError(f"cannot serialise {type(obj).__name__}")

    text = json.dumps(value, default=default, ensure_ascii=True, separators=(",", ":"))
    for i, raw in enumerate(raws):
        text = text.replace(json.dumps(f"\x00raw{i}\x00"), raw, 1)
    return text


def nested(levels: int) -> Raw:
    """``levels`` arrays inside each other."""
    return Raw("[" * levels + "]" * levels)


# Values JSON cannot carry (docs/protocol.md, "Strict JSON"), each refused with
# invalid_payload wherever it sits. Depths count the event's own [name, payload] array: put
# in ``{"signal": {"x": <value>}}`` of a signal-send (3 levels), "depth 33" is 33 deep.
HOSTILE_JSON: dict[str, Any] = {
    "NaN": Raw("NaN"),
    "Infinity": Raw("Infinity"),
    "-Infinity": Raw("-Infinity"),
    "1e999": Raw("1e999"),
    "-1e999": Raw("-1e999"),
    "33-digit int": Raw("1" * 33),
    "-33-digit int": Raw("-" + "1" * 33),
    "depth 33": nested(30),
    "depth 34 objects": Raw('{"a":' * 31 + "1" + "}" * 31),
    "depth 5000": nested(4997),
    "lone surrogate": "\ud800",
    "lone low surrogate": "a\udc00b",
    "surrogate key": {"\udbff": 1},
}


class StrictJSONError(ValueError):
    """Text a standards JSON parser (JSON.parse) would refuse."""


def _refuse_constant(name: str) -> Any:
    raise StrictJSONError(f"non-standard JSON constant {name}")


def strict_loads(text: str) -> Any:
    """``json.loads`` without Python's NaN/Infinity extension."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except StrictJSONError:
        raise
    except ValueError as exc:
        raise StrictJSONError(str(exc)) from None


@dataclass
class SioPacket:
    """One received Socket.IO packet."""

    type: int
    namespace: str
    id: int | None
    data: Any
    attachments: int = 0
    at: float = field(default_factory=time.monotonic)

    @property
    def event(self) -> str | None:
        if self.type in (EVENT, BINARY_EVENT) and isinstance(self.data, list) and self.data:
            name = self.data[0]
            return name if isinstance(name, str) else None
        return None

    @property
    def args(self) -> list[Any]:
        return self.data[1:] if self.type in (EVENT, BINARY_EVENT) else []


class AckTimeout(TimeoutError):
    """The server never acknowledged an event that asked for it."""


class ConnectRefused(ConnectionError):
    """CONNECT_ERROR from the server: ``data`` is its payload."""

    def __init__(self, data: Any) -> None:
        super().__init__(f"connect refused: {data!r}")
        self.data = data


def parse_sio(text: str) -> SioPacket:
    """Parses a Socket.IO packet (the Engine.IO message's text); JSON strictly."""
    if not text or not text[0].isdigit():
        raise StrictJSONError(f"bad Socket.IO packet type in {text[:40]!r}")
    kind, rest = int(text[0]), text[1:]
    attachments = 0
    if kind in (BINARY_EVENT, BINARY_ACK):
        count, dash, rest = rest.partition("-")
        if not dash or not count.isdigit():
            raise StrictJSONError(f"bad attachment count in {text[:40]!r}")
        attachments = int(count)
    namespace = "/"
    if rest.startswith("/"):
        namespace, _, rest = rest.partition(",")
    digits = len(rest) - len(rest.lstrip("0123456789"))
    ack_id = int(rest[:digits]) if digits else None
    rest = rest[digits:]
    data = strict_loads(rest) if rest else None
    return SioPacket(kind, namespace, ack_id, data, attachments)


class RawSocketIO:
    """One Engine.IO websocket with the default namespace connected (unless asked not to).

    ``violations`` lists every received frame that breaks strict JSON or the protocol;
    tests assert it stays empty. ``packets`` holds every Socket.IO packet in arrival order.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        ack_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.headers = headers or {}
        self.ack_timeout = ack_timeout
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.eio_sid: str | None = None
        self.sid: str | None = None  # the Socket.IO sid of the default namespace
        self.open_packet: dict[str, Any] | None = None
        self.connect_error: Any = None
        self.text_frames: list[str] = []
        self.binary_frames: list[bytes] = []
        self.packets: list[SioPacket] = []
        self.violations: list[str] = []
        self.pings = 0
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self._ids = itertools.count(1)
        self._acks: dict[int, list[Any]] = {}
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._handlers: dict[str, list[Callable[[list[Any]], None]]] = {}

    def on(self, event: str, callback: Callable[[list[Any]], None]) -> None:
        """Calls ``callback(args)`` (in the reader task: must not block) for each such event."""
        self._handlers.setdefault(event, []).append(callback)

    # -- connection ------------------------------------------------------------------------
    async def open(
        self, *, connect: bool = True, auth: Any = None, timeout: float = 5.0
    ) -> RawSocketIO:
        """Opens the websocket, reads the open packet, and (``connect``) joins namespace ``/``.

        Raises :class:`ConnectRefused` on CONNECT_ERROR.
        """
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(
            f"{self.url}/socket.io/?EIO=4&transport=websocket",
            headers=self.headers,
            max_msg_size=0,
            autoping=True,
            timeout=aiohttp.ClientWSTimeout(ws_close=2),
        )
        self._reader = asyncio.ensure_future(self._read())
        await self._until(lambda: self.open_packet is not None or self.closed.is_set(), timeout)
        if self.open_packet is None:
            raise ConnectionError(f"no Engine.IO open packet (close code {self.close_code})")
        if connect:
            await self.send_text("40" if auth is None else "40" + dumps(auth))
            await self._until(
                lambda: (
                    self.sid is not None or self.connect_error is not None or self.closed.is_set()
                ),
                timeout,
            )
            if self.connect_error is not None:
                raise ConnectRefused(self.connect_error)
            if self.sid is None:
                raise ConnectionError(f"namespace not connected (close code {self.close_code})")
        return self

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            try:
                await asyncio.wait_for(self.ws.close(), 2)
            except (TimeoutError, aiohttp.ClientError, ConnectionError):
                pass
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self.session is not None:
            await self.session.close()

    @property
    def connected(self) -> bool:
        return self.ws is not None and not self.ws.closed and not self.closed.is_set()

    # -- receiving -------------------------------------------------------------------------
    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await self._on_text(msg.data)
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    self.binary_frames.append(msg.data)
                else:  # CLOSE, ERROR
                    break
                self._changed.set()
        except (aiohttp.ClientError, ConnectionError):
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()
            self._changed.set()

    async def _on_text(self, text: str) -> None:
        self.text_frames.append(text)
        kind, body = text[:1], text[1:]
        try:
            if kind == "0":
                self.open_packet = strict_loads(body)
                self.eio_sid = self.open_packet.get("sid")
            elif kind == "2":  # the server's heartbeat: answer or be dropped
                self.pings += 1
                await self.send_text("3" + body)
            elif kind == "4":
                self._on_packet(parse_sio(body))
            elif kind not in ("1", "3", "6"):
                self.violations.append(f"unknown Engine.IO packet {text[:80]!r}")
        except StrictJSONError as exc:
            self.violations.append(f"{exc}: {text[:200]!r}")

    def _on_packet(self, pkt: SioPacket) -> None:
        self.packets.append(pkt)
        if pkt.type == CONNECT and pkt.namespace == "/":
            if isinstance(pkt.data, dict):
                self.sid = pkt.data.get("sid")
        elif pkt.type == CONNECT_ERROR:
            self.connect_error = pkt.data if pkt.data is not None else {}
        elif pkt.type in (ACK, BINARY_ACK) and pkt.id is not None:
            self._acks[pkt.id] = pkt.data if isinstance(pkt.data, list) else [pkt.data]
        elif pkt.type in (EVENT, BINARY_EVENT):
            if pkt.event is None:
                self.violations.append(f"event packet without a string name: {pkt.data!r:.200}")
            for callback in self._handlers.get(pkt.event or "", []):
                callback(pkt.args)

    async def _until(self, check: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return

    # -- sending ---------------------------------------------------------------------------
    async def send_text(self, text: str) -> None:
        assert self.ws is not None
        await self.ws.send_str(text)

    async def send_binary(self, data: bytes) -> None:
        assert self.ws is not None
        await self.ws.send_bytes(data)

    def next_id(self) -> int:
        return next(self._ids)

    async def emit(
        self,
        event: Any,
        *args: Any,
        ack: bool = True,
        raw: str | None = None,
        namespace: str | None = None,
        binary: list[bytes] | None = None,
    ) -> int | None:
        """Sends an EVENT (a BINARY_EVENT with ``binary`` attachments) and returns its ack id.

        ``raw`` replaces the JSON array ``[event, *args]`` with any text at all.
        """
        ack_id = self.next_id() if ack else None
        body = raw if raw is not None else dumps([event, *args])
        head = f"45{len(binary)}-" if binary is not None else "42"
        nsp = f"{namespace}," if namespace and namespace != "/" else ""
        await self.send_text(f"{head}{nsp}{'' if ack_id is None else ack_id}{body}")
        for attachment in binary or []:
            await self.send_binary(attachment)
        return ack_id

    async def wait_ack(self, ack_id: int, timeout: float | None = None) -> list[Any]:
        """The ack's argument list; :class:`AckTimeout` if it does not come."""
        await self._until(
            lambda: ack_id in self._acks or self.closed.is_set(), timeout or self.ack_timeout
        )
        if ack_id not in self._acks:
            why = "socket closed" if self.closed.is_set() else "timeout"
            raise AckTimeout(f"no ack for id {ack_id} ({why})")
        return self._acks[ack_id]

    def has_ack(self, ack_id: int) -> bool:
        return ack_id in self._acks

    async def call(self, event: Any, *args: Any, timeout: float | None = None, **kw: Any) -> Any:
        """Emits with an ack id and returns the ack's first argument (None if it has none)."""
        ack_id = await self.emit(event, *args, **kw)
        assert ack_id is not None
        answer = await self.wait_ack(ack_id, timeout)
        return answer[0] if answer else None

    async def barrier(self, timeout: float | None = None) -> None:
        """Returns once everything the server queued to this socket before now has arrived.

        The server writes one socket's packets in order, so the ack of an event sent now
        comes after anything queued earlier (an unknown event: no state, no delivery).
        """
        await self.call("zz-barrier", timeout=timeout)

    # -- what arrived ----------------------------------------------------------------------
    def events(self, name: str | None = None, since: int = 0) -> list[Any]:
        """First arguments of the events of this name (every event: ``name=None``)."""
        return [
            (p.args[0] if p.args else None) if name is not None else (p.event, p.args)
            for p in self.packets[since:]
            if p.event is not None and (name is None or p.event == name)
        ]

    def mark(self) -> int:
        """A position in ``packets``, for ``events(since=...)``."""
        return len(self.packets)

    async def wait_event(self, name: str, count: int = 1, timeout: float = 5.0) -> list[Any]:
        await self._until(lambda: len(self.events(name)) >= count, timeout)
        got = self.events(name)
        if len(got) < count:
            raise TimeoutError(f"waited for {count} {name!r}, got {len(got)}")
        return got

    # -- the protocol's calls --------------------------------------------------------------
    async def join(self, room: str, user: str, name: str | None = None, **extra: Any) -> Any:
        ack = await self.call(
            "join-room", {"roomId": room, "userId": user, "userName": name or user, **extra}
        )
        assert isinstance(ack, dict) and ack.get("ok"), ack
        return ack


class RawPool:
    """Raw clients of one test, all closed at the end (``async with RawPool(url) as pool``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.clients: list[RawSocketIO] = []

    async def connect(self, url: str | None = None, **kw: Any) -> RawSocketIO:
        connect = kw.pop("connect", True)
        auth = kw.pop("auth", None)
        client = RawSocketIO(url or self.url, **kw)
        self.clients.append(client)
        return await client.open(connect=connect, auth=auth)

    def violations(self) -> list[str]:
        return [v for c in self.clients for v in c.violations]

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)

    async def __aenter__(self) -> RawPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
