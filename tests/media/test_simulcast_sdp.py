"""Simulcast in SDP (sfu/media/simulcast.py): what an offer sends, what the answer says."""

from __future__ import annotations

import pytest

from sfu.media.simulcast import (
    REPAIRED_RID_URI,
    RID_URI,
    OfferedLayers,
    answer_layers,
    offered_layers,
)

# The video section of Chromium's offer for a camera published with three encodings.
CHROMIUM_VIDEO = """m=video 9 UDP/TLS/RTP/SAVPF 96 97
c=IN IP4 0.0.0.0
a=mid:1
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id
a=sendonly
a=rtpmap:96 VP8/90000
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=rid:q send
a=rid:h send
a=rid:f send
a=simulcast:send q;h;f
"""
AUDIO = """m=audio 9 UDP/TLS/RTP/SAVPF 111
c=IN IP4 0.0.0.0
a=mid:0
a=sendonly
a=rtpmap:111 opus/48000/2
"""
SESSION = "v=0\no=- 1 2 IN IP4 127.0.0.1\ns=-\nt=0 0\na=group:BUNDLE 0 1\n"
OFFER = (SESSION + AUDIO + CHROMIUM_VIDEO).replace("\n", "\r\n")
IDS = {RID_URI: 10, REPAIRED_RID_URI: 11}


def _offer(video: str) -> str:
    return (SESSION + AUDIO + video).replace("\n", "\r\n")


ROWS = [
    ("Chromium's three layers", OFFER, {"1": OfferedLayers(["q", "h", "f"], IDS)}),
    (
        "no simulcast line: one encoding",
        _offer(CHROMIUM_VIDEO.replace("a=simulcast:send q;h;f\n", "")),
        {},
    ),
    (
        "a paused layer still counts, an alternative by its first id",
        _offer(CHROMIUM_VIDEO.replace("send q;h;f", "send ~q;h,x;f")),
        {"1": OfferedLayers(["q", "h", "f"], IDS)},
    ),
    (
        "an id listed but not declared is left out",
        _offer(CHROMIUM_VIDEO.replace("send q;h;f", "send q;h;f;z")),
        {"1": OfferedLayers(["q", "h", "f"], IDS)},
    ),
    (
        "one layer left: not simulcast",
        _offer(CHROMIUM_VIDEO.replace("send q;h;f", "send f")),
        {},
    ),
    (
        "without the RID extension the layers cannot be told apart",
        _offer(
            CHROMIUM_VIDEO.replace(
                "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\n", ""
            )
        ),
        {},
    ),
    (
        "receive-direction rids are not a publisher's",
        _offer(CHROMIUM_VIDEO.replace(" send", " recv").replace("a=recvonly", "a=sendonly")),
        {},
    ),
    (
        "more than four: the first four",
        _offer(
            CHROMIUM_VIDEO.replace(
                "a=rid:f send\n", "a=rid:f send\na=rid:g send\na=rid:i send\n"
            ).replace("send q;h;f", "send q;h;f;g;i")
        ),
        {"1": OfferedLayers(["q", "h", "f", "g"], IDS)},
    ),
]


@pytest.mark.parametrize(("sdp", "expected"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_offered_layers(sdp: str, expected: dict[str, OfferedLayers]) -> None:
    assert offered_layers(sdp) == expected


def test_the_answer_receives_the_offered_layers_and_their_bandwidth() -> None:
    answer = OFFER.replace("a=sendonly", "a=recvonly").replace(
        "a=rid:q send\r\na=rid:h send\r\na=rid:f send\r\na=simulcast:send q;h;f\r\n",
        "b=AS:1500\r\n",
    )
    out = answer_layers(answer, offered_layers(OFFER), kbps=1970)
    video = out[out.index("m=video") :]
    assert "a=rid:q recv\r\na=rid:h recv\r\na=rid:f recv\r\na=simulcast:recv q;h;f\r\n" in video
    assert "b=AS:1970\r\nb=TIAS:1970000" in video and "b=AS:1500" not in video
    audio = out[out.index("m=audio") : out.index("m=video")]
    assert "a=rid" not in audio and "b=AS" not in audio
    assert answer_layers(answer, {}) == answer
