"""The transport side in aiortc and aioice: SRTP datagrams straight from the socket to the
DTLS transport and a receiver's fast path, peer activity from the DTLS counters, coroutines
driven without a task, and the host addresses ICE gathers on."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import aioice.ice
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
