"""The UDP ports of the SFU's ICE host candidates: a port range, or one port shared by every
connection (single-port mode, as LiveKit's ``rtc.udp_port`` and mediasoup's WebRtcServer).

aioice binds each host candidate to an ephemeral port (``local_addr=(address, 0)`` in
``Connection.get_component_candidates``) and has no option for it. Here a connection's
``get_component_candidates`` is replaced, on that connection only, just before aiortc gathers
(``RTCPeerConnection.__gather``): host sockets are bound by :func:`_bind_in_range` or attached
to a :class:`SharedPort`; server-reflexive and relayed candidates are gathered as aioice does.

In single-port mode each connection keeps an ordinary aioice ``StunProtocol`` (so the receive
fast path, which replaces ``protocol.datagram_received``, works unchanged), connected to a
:class:`_ConnectionTransport` that sends through the shared socket. The shared socket's
:class:`SharedPort` hands each datagram to one of them: STUN requests by the local ufrag of
their USERNAME (``local:remote``) once their MESSAGE-INTEGRITY checks out, STUN responses by
transaction id, everything else by the remote address, which maps to a connection after its
first authenticated check. Anything else is dropped and counted.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import logging
import random
import socket
from dataclasses import dataclass
from typing import Any

from aioice import stun
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aioice.ice import Connection, StunProtocol, server_reflexive_candidate
from aioice.turn import UDP_SOCKET_BUFFER_SIZE
from aioice.utils import random_string
from aiortc import RTCConfiguration, RTCPeerConnection

from ...refusal import Refusal
from ...settings import IceSettings

logger = logging.getLogger(__name__)


class NoFreePort(Refusal):
    """No host candidate could be bound: the range is used up, or the single port is taken."""

    def __init__(self, message: str) -> None:
        super().__init__("no_free_port", message)


@dataclass(frozen=True)
class Ports:
    """Where a connection's host candidates bind: one shared port, a range, or anywhere."""

    udp_port: int | None = None
    port_range: tuple[int, int] | None = None

    @classmethod
    def of(cls, ice: IceSettings) -> Ports:
        if ice.udp_port is not None:  # overrides the range (settings.py)
            return cls(udp_port=ice.udp_port)
        return cls(port_range=ice.port_range)

    @property
    def managed(self) -> bool:
        return self.udp_port is not None or self.port_range is not None


_settings: IceSettings | None = None


def use(ice: IceSettings | None) -> None:
    """Binds the host candidates of every peer connection of this process by these settings
    (read again at each connection's gathering, so live changes apply to new connections).

    None or neither setting: aioice's default, the kernel's ephemeral ports.
    """
    global _settings
    _settings = ice
    _install()
    if ice is None or ice.udp_port is None:
        _close_idle_shared_ports()


def current() -> Ports:
    """The ports a connection gathering now gets."""
    return Ports() if _settings is None else Ports.of(_settings)


def unmanaged(configuration: RTCConfiguration) -> RTCConfiguration:
    """Marks a configuration whose peer connections keep ephemeral ports: peers that run in
    the SFU's own process but are not the SFU's (the tests' and benchmarks' participants),
    which must not share its port or use up its range."""
    configuration._sfu_unmanaged = True  # type: ignore[attr-defined]  # a marker of ours
    return configuration


_original_gather: Any = None


def _install() -> None:
    global _original_gather
    if _original_gather is not None:
        return
    _original_gather = RTCPeerConnection._RTCPeerConnection__gather  # type: ignore[attr-defined]
    RTCPeerConnection._RTCPeerConnection__gather = _gather  # type: ignore[attr-defined]


async def _gather(pc: RTCPeerConnection) -> None:
    """aiortc's ``__gather`` (every ICE transport's gatherer), ports chosen first."""
    ports = current()
    configuration = pc._RTCPeerConnection__configuration  # type: ignore[attr-defined]
    if ports.managed and not getattr(configuration, "_sfu_unmanaged", False):
        for ice_transport in pc._RTCPeerConnection__iceTransports:  # type: ignore[attr-defined]
            if ice_transport.iceGatherer.state == "new":
                connection = ice_transport.iceGatherer._connection
                # An instance attribute: gather_candidates calls self.get_component_candidates.
                connection.get_component_candidates = functools.partial(
                    _component_candidates, connection, ports
                )
    await _original_gather(pc)


async def _component_candidates(
    connection: Connection, ports: Ports, component: int, addresses: list[str], timeout: int = 5
) -> list[Candidate]:
    """aioice's ``Connection.get_component_candidates`` with host sockets bound by ``ports``."""
    if ports.udp_port is not None:
        _unique_ufrag(connection)
    where = (
        f"ice.udp_port {ports.udp_port}"
        if ports.udp_port is not None
        else "ice.udp_port_range {}-{}".format(*ports.port_range or (0, 0))
    )
    protocols: list[StunProtocol] = []
    for address in addresses:
        try:
            if ports.udp_port is not None:
                protocol = await _shared_port(address, ports.udp_port).attach(connection)
            else:
                assert ports.port_range is not None
                protocol = await _bind_in_range(connection, address, *ports.port_range)
        except OSError as exc:
            logger.warning("ICE: no host candidate on %s with %s: %s", address, where, exc)
            continue
        host, port = protocol.transport.get_extra_info("sockname")[:2]
        protocol.local_candidate = Candidate(
            foundation=candidate_foundation("host", "udp", host),
            component=component,
            transport="udp",
            priority=candidate_priority(component, "host"),
            host=host,
            port=port,
            type="host",
        )
        protocols.append(protocol)
    connection._protocols += protocols
    if addresses and not protocols:
        logger.error(
            "ICE: no UDP port free with %s on %s: this peer connection cannot connect",
            where,
            ", ".join(addresses),
        )
        raise NoFreePort(f"the media server has no free UDP port ({where})")

    # Server-reflexive candidates through the host sockets; relayed ones as aioice gathers
    # them (its own method, given no host address, gathers only those).
    tasks: list[asyncio.Task[Any]] = []
    if connection.stun_server:
        for protocol in protocols:
            if ipaddress.ip_address(protocol.local_candidate.host).version == 4:
                tasks.append(
                    asyncio.create_task(
                        server_reflexive_candidate(protocol, connection.stun_server)
                    )
                )
    relayed = asyncio.create_task(
        Connection.get_component_candidates(connection, component, [], timeout)
    )
    candidates = [p.local_candidate for p in protocols]
    if tasks:
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in done:
            if task.exception() is None:
                candidates.append(task.result()[0])
        for task in pending:
            task.cancel()
    return candidates + await relayed


def _unique_ufrag(connection: Connection) -> None:
    """A shared port tells connections apart by their local ufrag: aioice's are 4 random
    characters (a collision in 14.8 million), so a taken one is replaced before it is sent."""
    while any(connection.local_username in p.by_ufrag for p in _shared.values()):
        connection._local_username = random_string(8)


# -- a port range ----------------------------------------------------------------------------
_next_in_range: dict[tuple[int, int], int] = {}


async def _bind_in_range(connection: Connection, address: str, low: int, high: int) -> StunProtocol:
    """A host socket on a free port of ``low``-``high``: next-fit from where the previous bind
    ended (a random start), so a port just freed is not reused at once."""
    span = high - low + 1
    start = _next_in_range.get((low, high), random.randrange(span))
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    for i in range(span):
        port = low + (start + i) % span
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((address, port))
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                continue
            raise
        _next_in_range[(low, high)] = (start + i + 1) % span
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_SOCKET_BUFFER_SIZE)
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(
            lambda: StunProtocol(connection), sock=sock
        )
        return protocol
    raise OSError(errno.EADDRINUSE, f"all {span} ports of {low}-{high} are in use")


# -- one shared port -------------------------------------------------------------------------
SHARED_SOCKET_BUFFER_SIZE = 8 * 1024 * 1024
READ_BATCH = 256  # datagrams read per wake-up, then other callbacks get their turn
_shared: dict[tuple[str, int], SharedPort] = {}
_dropped_by_closed_ports = 0


def dropped_datagrams() -> int:
    """Datagrams the shared ports dropped since start: unknown ufrag or sender, failed
    MESSAGE-INTEGRITY, not STUN where STUN was due."""
    return _dropped_by_closed_ports + sum(p.dropped for p in _shared.values())


def shared_ports() -> list[SharedPort]:
    """The shared sockets open now (single-port mode)."""
    return list(_shared.values())


def _shared_port(address: str, port: int) -> SharedPort:
    loop = asyncio.get_running_loop()
    shared = _shared.get((address, port))
    if shared is not None and shared.loop is not loop:  # a closed test's loop: start afresh
        shared.close()
        shared = None
    if shared is None:
        shared = _shared[(address, port)] = SharedPort(address, port, loop)
    return shared


def _close_idle_shared_ports() -> None:
    for shared in list(_shared.values()):
        if not shared.by_ufrag:
            shared.close()


async def close_shared_ports() -> None:
    """Closes every shared socket (their connections lose their host candidate)."""
    for shared in list(_shared.values()):
        shared.close()
    await asyncio.sleep(0)  # let the protocols hear connection_lost


class SharedPort:
    """One UDP socket on ``address:port`` that every SFU connection on that address shares.

    Opened by the first connection and kept open after connections close. Not an asyncio
    datagram transport: that reads one datagram per event-loop iteration, enough for one
    connection's socket but far too few for every connection's (the kernel drops the rest
    once its buffer is full). Here a wake-up drains up to ``READ_BATCH`` datagrams.
    """

    def __init__(self, address: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
        self.address, self.port, self.loop = address, port, loop
        self.by_ufrag: dict[str, StunProtocol] = {}
        self.by_address: dict[tuple[str, int], StunProtocol] = {}
        self.dropped = 0  # received and dropped: unknown, unauthenticated
        self.unsent = 0  # sends the kernel refused (its send buffer full)
        self.sock: socket.socket | None = None
        self.closed = False
        self._opening: asyncio.Future[None] | None = None

    async def attach(self, connection: Connection) -> StunProtocol:
        """A protocol for ``connection`` on this socket (opened if needed)."""
        if self.sock is None:
            if self._opening is None:
                self._opening = asyncio.ensure_future(self._open())
            await asyncio.shield(self._opening)
        protocol = StunProtocol(connection)
        self.by_ufrag[connection.local_username] = protocol
        protocol.connection_made(_ConnectionTransport(self, protocol))
        return protocol

    async def _open(self) -> None:
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((self.address, self.port))
        except OSError:
            sock.close()
            self._opening = None
            _shared.pop((self.address, self.port), None)
            raise
        sock.setblocking(False)
        # Every connection's media goes through this one socket (the kernel caps these at
        # net.core.rmem_max and wmem_max).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SHARED_SOCKET_BUFFER_SIZE)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SHARED_SOCKET_BUFFER_SIZE)
        self.sock = sock
        self.loop.add_reader(sock.fileno(), self._read_ready)
        logger.info(
            "ICE: single UDP port %s:%d open for every SFU connection", self.address, self.port
        )

    def sendto(self, data: bytes, addr: tuple[Any, ...]) -> None:
        assert self.sock is not None
        try:
            self.sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self.unsent += 1  # dropped, as a full link would: media recovers by NACK and PLI
        except OSError as exc:
            self.error_received(exc)

    def _read_ready(self) -> None:
        sock = self.sock
        assert sock is not None
        for _ in range(READ_BATCH):
            try:
                data, addr = sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error of an earlier send
                self.error_received(exc)
                continue
            self.datagram_received(data, addr)

    def detach(self, protocol: StunProtocol) -> None:
        """Forgets a closed connection's ufrag and remote addresses."""
        for ufrag, known in list(self.by_ufrag.items()):
            if known is protocol:
                del self.by_ufrag[ufrag]
        for addr, known in list(self.by_address.items()):
            if known is protocol:
                del self.by_address[addr]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if len(addr) != 2:
            addr = (addr[0], addr[1])  # IPv6 four-tuple, as aioice keeps addresses
        # RFC 7983: 0-3 is STUN; DTLS, RTP and RTCP go by the sender's address.
        if data and data[0] > 3:
            protocol = self.by_address.get(addr)
            if protocol is not None:
                protocol.datagram_received(data, addr)  # the receive fast path may replace it
                return
            self._drop("from an unknown address", addr)
            return
        self._stun_received(data, addr)

    def _stun_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = stun.parse_message(data)
        except ValueError:
            self._drop("not STUN", addr)
            return
        protocol: StunProtocol | None
        if message.message_class == stun.Class.REQUEST:
            username = message.attributes.get("USERNAME")
            ufrag = username.partition(":")[0] if isinstance(username, str) else None
            protocol = self.by_ufrag.get(ufrag) if ufrag else None
            if protocol is None or not message.check_message_integrity(
                protocol.receiver.local_password.encode("utf8")
            ):
                # Not answered: no 401 for strangers to a shared port.
                self._drop("a request of no connection here", addr)
                return
            self._map(addr, protocol)
        elif message.message_class in (stun.Class.RESPONSE, stun.Class.ERROR):
            protocol = self._transaction_owner(message.transaction_id, addr)
            if protocol is None:
                self._drop("a response to no request", addr)
                return
            remote_password = protocol.receiver.remote_password
            if remote_password and message.check_message_integrity(remote_password.encode("utf8")):
                self._map(addr, protocol)  # our check answered: that address is the peer's
        else:  # indications
            protocol = self.by_address.get(addr)
            if protocol is None:
                self._drop("an indication from an unknown address", addr)
                return
        protocol.datagram_received(data, addr)

    def _drop(self, why: str, addr: tuple[str, int]) -> None:
        self.dropped += 1
        logger.debug("shared UDP port %s:%d dropped %s from %s", self.address, self.port, why, addr)

    def _transaction_owner(
        self, transaction_id: bytes, addr: tuple[str, int]
    ) -> StunProtocol | None:
        protocol = self.by_address.get(addr)
        if protocol is not None and transaction_id in protocol.transactions:
            return protocol
        for protocol in self.by_ufrag.values():
            if transaction_id in protocol.transactions:
                return protocol
        return None

    def _map(self, addr: tuple[str, int], protocol: StunProtocol) -> None:
        if self.by_address.get(addr) is not protocol:
            self.by_address[addr] = protocol

    def error_received(self, exc: Exception) -> None:
        logger.debug("shared UDP port %s:%d: %s", self.address, self.port, exc)

    def close(self) -> None:
        """Closes the socket; its connections lose this host candidate."""
        global _dropped_by_closed_ports
        if self.closed:
            return
        self.closed = True
        if _shared.get((self.address, self.port)) is self:
            del _shared[(self.address, self.port)]
        _dropped_by_closed_ports += self.dropped
        self.dropped = 0
        for protocol in list(self.by_ufrag.values()):
            protocol.transport.close()
        if self.sock is not None:
            if not self.loop.is_closed():
                self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


class _ConnectionTransport(asyncio.DatagramTransport):
    """What one connection's protocol sees of the shared socket: its own ``close``."""

    def __init__(self, shared: SharedPort, protocol: StunProtocol) -> None:
        super().__init__()
        self._shared, self._protocol = shared, protocol
        self._closing = False
        # An instance attribute, so a packet sent costs no extra call.
        self.sendto = shared.sendto  # type: ignore[method-assign, assignment]

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "sockname" and self._shared.sock is not None:
            return self._shared.sock.getsockname()
        return default  # not the socket: it is not one connection's to configure or close

    def is_closing(self) -> bool:
        return self._closing or self._shared.closed

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._shared.detach(self._protocol)
        if not self._shared.loop.is_closed():
            self._shared.loop.call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()
