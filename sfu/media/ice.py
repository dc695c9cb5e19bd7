"""ICE for the SFU's peer connections: RTCConfiguration, host addresses, 1:1 NAT."""

from __future__ import annotations

import ipaddress
import re

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer

from ..settings import IceSettings
from . import turn
from .aiortc import ports, transport


def rtc_configuration(ice: IceSettings) -> RTCConfiguration:
    """The configuration of every SFU peer connection.

    Always explicit: aiortc's default (``iceServers=None``) is a public Google STUN server.

    ``max-bundle``: one transport for every m-line. Under aiortc's default ``balanced``
    policy, a first offer with two m-lines of one kind (a late joiner's downlink carrying
    two publishers' cameras) leaves the second on a transport that the browser's BUNDLE
    answer makes aiortc stop, so that sender never starts (seen in Chromium, aiortc 1.16).
    """
    return RTCConfiguration(
        # ice.sfu_servers (or ice.servers), TURN credentials minted now for "sfu"; aiortc
        # uses the first STUN and the first TURN URL of the list.
        iceServers=[
            RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
            for s in turn.sfu_ice_servers(ice)
        ],
        bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
    )


def apply_host_addresses(ice: IceSettings) -> None:
    """Gathers host candidates only on ``ice.host_addresses`` (all interfaces if empty), on
    the ports of ``ice.udp_port`` or ``ice.udp_port_range`` (read again for each new
    connection, so live changes apply to new connections)."""
    for address in ice.host_addresses:
        ipaddress.ip_address(address)  # a typo fails here, not as a silent lack of media
    transport.pin_host_addresses(ice.host_addresses)
    ports.use(ice)


_CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ host.*)$", re.M)


def announce(sdp: str, ice: IceSettings) -> str:
    """Rewrites the host candidates of an SDP the SFU sends to ``ice.announced_address``.

    For a server behind 1:1 NAT: browsers then send to the public address, which the NAT
    maps to the private one the SFU listens on.
    """
    address = ice.announced_address
    if not address:
        return sdp
    return _CANDIDATE.sub(lambda m: m.group(1) + address + m.group(3), sdp)


def limit_video_bitrate(sdp: str, kbps: int) -> str:
    """Adds ``b=AS`` and ``b=TIAS`` to every video m-line: a publisher's sending ceiling."""
    out: list[str] = []
    video = False
    for line in sdp.split("\r\n"):
        if line.startswith("m="):
            video = line.startswith("m=video")
        elif line.startswith("b=") and video:
            continue  # replaced below
        out.append(line)
        if video and line.startswith("c="):
            out.append(f"b=AS:{kbps}")
            out.append(f"b=TIAS:{kbps * 1000}")
    return "\r\n".join(out)
