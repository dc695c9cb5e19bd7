"""Simulcast in SDP (RFC 8853, RFC 8851): what a publisher's offer sends, what the answer
receives.

A browser that publishes a track in several encodings offers, in that track's m-section,
one ``a=rid:<id> send`` line per encoding and ``a=simulcast:send <id>;<id>;...`` (lowest
first, as the app asks: sfu/settings.py ``simulcast_layers``), and no ``a=ssrc`` lines: its
packets name their encoding with the RID header extension (the RTX packets with the
repaired-RID one) until the receiver has seen their SSRC. The answer lists the same ids
``recv``. aiortc knows none of this: the router keeps these pure text edits here, and the
aiortc side (header extensions, demultiplexing) in sfu/media/aiortc/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
REPAIRED_RID_URI = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
MAX_LAYERS = 4
# Where a simulcast sender's estimate starts (kbit/s): enough for the lower layers and
# part of the top one at once, without flooding a weak uplink from the first packet.
START_KBPS = 1200

_SECTION = re.compile(r"(?=^m=)", re.M)
_RID = re.compile(r"^a=rid:([A-Za-z0-9_-]{1,16}) send(?: .*)?$")
_EXTMAP = re.compile(r"^a=extmap:(\d+)(?:/\w+)? (\S+)")


@dataclass(frozen=True)
class OfferedLayers:
    """One m-section's simulcast offer: its encodings lowest first, and the header
    extension ids the publisher gave the RID and repaired-RID extensions."""

    rids: list[str]
    extension_ids: dict[str, int] = field(default_factory=dict)


def _lines(section: str) -> list[str]:
    return [line for line in section.replace("\r\n", "\n").split("\n") if line]


def offered_layers(sdp: str) -> dict[str, OfferedLayers]:
    """The video m-sections of an offer that send simulcast, by mid.

    Only encodings both declared (``a=rid:... send``) and listed in ``a=simulcast:send``
    count, in the simulcast line's order; a paused one (``~id``) counts too (it may start
    later), an alternative (``a,b``) counts by its first id. A section with fewer than two
    such encodings, or without the RID extension, is not simulcast.
    """
    out: dict[str, OfferedLayers] = {}
    for section in _SECTION.split(sdp):
        lines = _lines(section)
        if not lines or not lines[0].startswith("m=video"):
            continue
        mid = None
        declared: set[str] = set()
        order: list[str] = []
        ids: dict[str, int] = {}
        for line in lines[1:]:
            if line.startswith("a=mid:"):
                mid = line[6:].strip()
            elif (match := _RID.match(line)) is not None:
                declared.add(match.group(1))
            elif line.startswith("a=simulcast:"):
                words = line[len("a=simulcast:") :].split()
                for direction, streams in zip(words[::2], words[1::2], strict=False):
                    if direction == "send":
                        order = [s.split(",")[0].lstrip("~") for s in streams.split(";")]
            elif (ext := _EXTMAP.match(line)) is not None and ext.group(2) in (
                RID_URI,
                REPAIRED_RID_URI,
            ):
                ids[ext.group(2)] = int(ext.group(1))
        rids = [r for r in dict.fromkeys(order) if r in declared][:MAX_LAYERS]
        if mid is not None and len(rids) >= 2 and RID_URI in ids:
            out[mid] = OfferedLayers(rids, ids)
    return out


def answer_layers(sdp: str, layers: dict[str, OfferedLayers], kbps: int | None = None) -> str:
    """The answer with each simulcast section receiving the offered encodings
    (``a=rid:<id> recv`` and ``a=simulcast:recv``), and, with ``kbps``, that section's
    bandwidth (``b=AS``/``b=TIAS``: browsers cap the sum of the encodings by it) and the
    bitrate its sender's estimate starts from (``x-google-start-bitrate``, libwebrtc's:
    from its default of 300 kbit/s, a REMB-only sender needs about 20 s to afford the top
    layer, and all that time every subscriber gets a starved picture; START_KBPS at most)."""
    if not layers:
        return sdp
    out: list[str] = []
    for section in _SECTION.split(sdp):
        lines = _lines(section)
        mid = next((line[6:].strip() for line in lines if line.startswith("a=mid:")), None)
        video = mid is not None and lines[0].startswith("m=video")
        offered = layers.get(mid) if video and mid is not None else None
        if offered is None:
            out.extend(lines)
            continue
        if kbps is not None:
            kept = []
            for line in lines:
                if line.startswith("b="):
                    continue
                kept.append(line)
                if line.startswith("c="):
                    kept += [f"b=AS:{kbps}", f"b=TIAS:{kbps * 1000}"]
            lines = kept
        lines = [line for line in lines if not line.startswith(("a=rid:", "a=simulcast:"))]
        if kbps is not None:
            lines = _start_bitrate(lines, min(kbps, START_KBPS))
        lines += [f"a=rid:{rid} recv" for rid in offered.rids]
        lines.append("a=simulcast:recv " + ";".join(offered.rids))
        out.extend(lines)
    return "\r\n".join(out) + "\r\n"


def _start_bitrate(lines: list[str], kbps: int) -> list[str]:
    """The section's first payload type (its codec) with ``x-google-start-bitrate``."""
    formats = lines[0].split(" ")[3:]
    if not formats:
        return lines
    pt = formats[0]
    param = f"x-google-start-bitrate={kbps}"
    fmtp = f"a=fmtp:{pt} "
    if any(line.startswith(fmtp) for line in lines):
        return [
            line + ";" + param if line.startswith(fmtp) and "x-google-start" not in line else line
            for line in lines
        ]
    at = next(
        (i + 1 for i, line in enumerate(lines) if line.startswith(f"a=rtpmap:{pt} ")), len(lines)
    )
    return lines[:at] + [fmtp + param] + lines[at:]
