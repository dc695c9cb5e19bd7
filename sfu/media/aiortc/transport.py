"""The transport side in aiortc and aioice: SRTP datagrams straight from the socket to the
DTLS transport and a receiver's fast path, peer activity from the DTLS counters, coroutines
driven without a task, ICE consent freshness, why a connection failed, and the host
addresses ICE gathers on."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

import aioice.ice
import aioice.stun
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtp import (
    is_rtcp,
)

from ..rtp.arrival import NTP_UNIX_OFFSET
from .srtp import srtp_call

logger = logging.getLogger(__name__)


class PeerActivity:
    """When a peer connection last received RTCP (or RTP) from its remote peer.

    aiortc has no ``disconnected`` state and reports ``failed`` only after ICE consent
    checks fail (about 30 s); a peer that sends media sends RTCP about every second. Read
    from the DTLS transports' receive counters when asked, so nothing runs per packet.
    """

    def __init__(self) -> None:
        self._last = time.monotonic()
        self._transports: list[Any] = []
        self._seen = -1

    def attach(self, pc: Any) -> None:
        """Watches the DTLS transports of ``pc`` (again after each negotiation: idempotent)."""
        for transceiver in pc.getTransceivers():
            transport = transceiver.receiver.transport
            if not any(t is transport for t in self._transports):
                self._transports.append(transport)

    @property
    def last(self) -> float:
        received = sum(t._RTCDtlsTransport__rx_packets for t in self._transports)
        if received != self._seen:
            self._seen = received
            self._last = time.monotonic()
        return self._last

    @last.setter
    def last(self, value: float) -> None:
        self._seen = sum(t._RTCDtlsTransport__rx_packets for t in self._transports)
        self._last = value


def receive_directly(pc: Any) -> None:
    """Hands a peer connection's SRTP and SRTCP datagrams to its DTLS transport in the
    socket's own callback (idempotent; call after each negotiation).

    aiortc's path for each datagram is: aioice tries to parse it as STUN (an exception for
    every media packet), queues it, wakes the DTLS transport's reading task, which awaits
    four coroutine layers before ``_recv_next`` unprotects it. Here the nominated pair's
    protocol unprotects and dispatches at once; DTLS, STUN and anything before the
    transport is connected still take aiortc's path.
    """
    for transceiver in pc.getTransceivers():
        for dtls in (transceiver.receiver.transport, transceiver.sender.transport):
            if dtls is None or getattr(dtls, "_sfu_direct", False):
                continue
            dtls._sfu_direct = True
            if dtls.state == "connected":
                _install_direct(dtls)
            else:

                def on_state(dtls: Any = dtls) -> None:
                    if dtls.state == "connected":
                        _install_direct(dtls)

                dtls.on("statechange", on_state)


def _install_direct(dtls: Any) -> None:
    pair = dtls.transport._connection._nominated.get(1)
    if pair is None or getattr(pair.protocol, "_sfu_direct", False):
        return
    protocol = pair.protocol
    original = protocol.datagram_received
    rx_srtp = dtls._rx_srtp
    unprotect = srtp_call(rx_srtp, "unprotect")
    # SSRC -> a ReceiverTap's fast path (ReceiverTap._use_fast_path).
    fast_routes: dict[int, Callable[[bytes, int], bool]] = dtls.__dict__.setdefault("_sfu_fast", {})

    def datagram_received(data: bytes, addr: tuple[Any, ...]) -> None:
        first = data[0] if data else 0
        if not 127 < first < 192 or dtls._state is not DtlsState.CONNECTED:
            original(data, addr)  # STUN, DTLS: aioice and aiortc as usual
            return
        dtls._RTCDtlsTransport__rx_bytes += len(data)
        dtls._RTCDtlsTransport__rx_packets += 1
        try:
            if is_rtcp(data):
                drive(dtls._handle_rtcp_data(rx_srtp.unprotect_rtcp(data)))
                return
            plain = unprotect(data)
        except Exception:  # pylibsrtp.Error: replayed or damaged, as aiortc drops it
            return
        arrival_ms = int((time.time() + NTP_UNIX_OFFSET) * 1000)  # aiortc's clock
        fast = fast_routes.get(int.from_bytes(plain[8:12])) if len(plain) >= 12 else None
        try:
            if fast is not None and fast(plain, arrival_ms):
                return
        except Exception:
            logger.warning("media packet handler failed", exc_info=True)
            return
        drive(dtls._handle_rtp_data(plain, arrival_ms))

    protocol.datagram_received = datagram_received
    protocol._sfu_direct = True


def route_by_mid(pc: Any) -> None:
    """Routes RTP packets of unknown SSRCs by their mid header extension (idempotent).

    aiortc's RTP router keeps a table of receivers by mid but never reads it: it takes an
    unknown SSRC for the one receiver of its payload type, and drops it when two m-lines
    share the type (a camera and a screen share). A simulcast publisher announces no SSRCs
    at all, so each of its encodings is such an SSRC. Learnt SSRCs go in aiortc's own
    table, so that later packets are routed (and take the fast path) as before.
    """
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        if dtls is None or getattr(dtls, "_sfu_mid_routing", False):
            continue
        dtls._sfu_mid_routing = True
        router = dtls._rtp_router
        original = router.route_rtp

        def route_rtp(packet: Any, router: Any = router, original: Any = original) -> Any:
            receiver = original(packet)
            if receiver is None and packet.ssrc not in router.ssrc_table:
                mid = packet.extensions.mid
                receiver = router.mid_table.get(mid) if mid is not None else None
                pt_receivers = router.payload_type_table.get(packet.payload_type, ())
                if receiver is None or receiver not in pt_receivers:
                    return None
                if len(router.ssrc_table) < 64:  # a publisher cannot make it grow unbounded
                    router.ssrc_table[packet.ssrc] = receiver
            return receiver

        router.route_rtp = route_rtp


def drive(coro: Any) -> None:
    """Runs a coroutine now, on this stack; if it has to wait, a task finishes it.

    aiortc's packet handlers only await sends that complete at once, so they nearly
    always end here without a task (and its wake-up) per packet.
    """
    try:
        waiting = coro.send(None)
    except StopIteration:
        return
    except Exception:
        logger.warning("media packet handler failed", exc_info=True)
        return
    task = asyncio.ensure_future(_finish(coro, waiting))
    _finishing.add(task)
    task.add_done_callback(_finishing.discard)


_finishing: set[asyncio.Future[None]] = set()


async def _finish(coro: Any, waiting: Any) -> None:
    """Drives a coroutine :func:`drive` started, as a task would."""
    try:
        while True:
            if waiting is None:  # a bare yield (asyncio.sleep(0))
                await asyncio.sleep(0)
            else:
                waiting._asyncio_future_blocking = False
                await asyncio.wait([waiting])
            # Resumed like a task resumes it: the awaited future's result or exception
            # surfaces inside the coroutine.
            try:
                waiting = coro.send(None)
            except StopIteration:
                return
    except asyncio.CancelledError:
        coro.close()
        raise
    except Exception:
        logger.warning("media packet handler failed", exc_info=True)


_original_get_host_addresses = aioice.ice.get_host_addresses
_pinned_addresses: list[str] = []


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _pinned_addresses:
        return [a for a in _pinned_addresses if (":" in a and use_ipv6) or ("." in a and use_ipv4)]
    return _original_get_host_addresses(use_ipv4, use_ipv6)


def pin_host_addresses(addresses: Iterable[str]) -> None:
    """Makes every ICE agent of this process gather host candidates on these addresses only.

    An empty list restores aioice's default (all non-loopback interfaces).
    """
    _pinned_addresses[:] = list(addresses)
    aioice.ice.get_host_addresses = _get_host_addresses


# ICE consent freshness (RFC 7675) on the SFU's connections: a check about every
# CONSENT_INTERVAL seconds, each waiting up to 3.5 s for its answer (two retransmissions:
# a slow link's queue delays answers, an overloaded peer drops some); consent is lost
# when no check was answered for CONSENT_TIMEOUT seconds (as long as the watchdog gives a
# silent peer). aioice's own: every 5 s, no retransmission, lost after 6 failures in a
# row (about 30 s).
CONSENT_INTERVAL = 1.0
CONSENT_TIMEOUT = 10.0


def watch_consent(pc: Any, on_lost: Callable[[], None]) -> None:
    """Makes the ICE connections of ``pc`` check consent as above (idempotent).

    Call it after each ``setRemoteDescription``, before the event loop runs aiortc's
    connect task (aioice starts its consent task at the end of ``connect()``); when consent
    is lost the ICE connection closes, so aiortc reports the connection ``failed`` or
    ``closed``, and ``on_lost`` is called first.
    """
    for transceiver in pc.getTransceivers():
        ice = transceiver.receiver.transport.transport
        connection = ice._connection
        if getattr(connection, "_sfu_consent", False):
            continue
        connection._sfu_consent = True
        connection.query_consent = lambda c=connection: _query_consent(c, on_lost)


async def _query_consent(connection: Any, on_lost: Callable[[], None]) -> None:
    """aioice 0.13's ``Connection.query_consent`` with the timing above; checks overlap,
    so a slow answer does not delay the next check."""
    assert connection.remote_password is not None  # connect() has it before it starts this
    key = connection.remote_password.encode("utf8")
    answered = [time.monotonic()]
    checks: set[asyncio.Task[None]] = set()

    async def check(pair: Any) -> None:
        request = connection.build_request(pair, nominate=False)
        try:
            await pair.protocol.request(
                request, pair.remote_addr, integrity_key=key, retransmissions=2
            )
            answered[0] = time.monotonic()
        except aioice.stun.TransactionError:
            pass

    try:
        while time.monotonic() - answered[0] < CONSENT_TIMEOUT:
            await asyncio.sleep(CONSENT_INTERVAL * (0.8 + 0.4 * random.random()))
            for pair in list(connection._nominated.values()):
                task = asyncio.ensure_future(check(pair))
                checks.add(task)
                task.add_done_callback(checks.discard)
    finally:
        for task in checks:
            task.cancel()
    connection._query_consent_task = None  # close() must not cancel this task
    on_lost()
    await connection.close()


def failure_cause(pc: Any) -> str:
    """Which layer of a connection failed, in words for a log line: ``ICE failed``,
    ``DTLS failed``, or ``failed`` (public state only)."""
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        if dtls.transport.state == "failed":
            return "ICE failed"
        if dtls.state == "failed":
            return "DTLS failed"
    return "failed"
