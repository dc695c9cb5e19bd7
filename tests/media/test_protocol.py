"""Bad sfu-* input gets a clear refusal, never an exception (no network needed)."""

from __future__ import annotations

from sfu.media.ice import announce, limit_video_bitrate
from sfu.settings import IceSettings

SDP = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 10.0.0.1\r\n"
    "a=candidate:1 1 udp 2130706431 10.0.0.1 40000 typ host\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 97\r\nc=IN IP4 10.0.0.1\r\nb=AS:99\r\n"
    "a=candidate:2 1 udp 1694498815 1.2.3.4 40001 typ srflx raddr 10.0.0.1 rport 40000\r\n"
)


async def test_refusals(make_router):
    router = make_router()
    sent: list = []

    async def send(event: str, payload: dict) -> None:
        sent.append((event, payload))

    assert (await router.handle("nobody", "sfu-publish", {}))["error"] == "not_in_room"
    await router.join("alice", send)
    cases = [
        ("sfu-nope", {}, "unknown_event"),
        ("sfu-publish", [], "invalid_payload"),
        ("sfu-publish", {}, "invalid_payload"),
        ("sfu-publish", {"description": {"type": "answer", "sdp": "v=0"}}, "invalid_payload"),
        ("sfu-publish", {"description": {"type": "offer", "sdp": "v=0\r\nbad"}}, "invalid_sdp"),
        (
            "sfu-publish",
            {"description": {"type": "offer", "sdp": SDP}, "sources": {"x": "tv"}},
            "invalid_payload",
        ),
        (
            "sfu-subscribe-answer",
            {"description": {"type": "answer", "sdp": SDP}},
            "no_pending_offer",
        ),
        ("sfu-candidate", {"target": "nowhere", "candidate": {}}, "invalid_payload"),
        ("sfu-candidate", {"target": "subscribe", "candidate": {"candidate": ""}}, "not_ready"),
    ]
    for event, payload, code in cases:
        ack = await router.handle("alice", event, payload)
        assert ack["ok"] is False and ack["error"] == code, (event, payload, ack)
        assert isinstance(ack["message"], str)
    assert sent == []
    await router.leave("alice")
    assert router.stats()["participants"] == 0


def test_sdp_rewrites():
    limited = limit_video_bitrate(SDP, 800)
    video = limited.split("m=video")[1]
    assert "b=AS:800\r\nb=TIAS:800000" in video and "b=AS:99" not in video
    assert "b=AS" not in limited.split("m=video")[0]
    nat = announce(SDP, IceSettings(announced_address="203.0.113.7"))
    assert "203.0.113.7 40000 typ host" in nat
    assert "1.2.3.4 40001 typ srflx" in nat  # only host candidates are rewritten
    assert announce(SDP, IceSettings()) == SDP
