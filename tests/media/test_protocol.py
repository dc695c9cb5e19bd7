"""Bad sfu-* input gets a clear refusal, never an exception (no network needed)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
        ("sfu-view", {}, "invalid_payload"),
        ("sfu-view", {"views": {}}, "invalid_payload"),
        ("sfu-view", {"views": [{"mid": "1"}] * 201}, "invalid_payload"),
        ("sfu-view", {"views": ["1"]}, "invalid_payload"),
        ("sfu-view", {"views": [{"mid": 1, "height": 10}]}, "invalid_payload"),
        ("sfu-view", {"views": [{"mid": "1", "height": -1}]}, "invalid_payload"),
        ("sfu-view", {"views": [{"mid": "1", "height": True}]}, "invalid_payload"),
        ("sfu-view", {"views": [{"mid": "1", "height": 1.5}]}, "invalid_payload"),
        ("sfu-view", {"views": [{"mid": "1", "visible": "no"}]}, "invalid_payload"),
        ("sfu-view", {"views": [{"mid": "1", "preference": "high"}]}, "invalid_payload"),
    ]
    for event, payload, code in cases:
        ack = await router.handle("alice", event, payload)
        assert ack["ok"] is False and ack["error"] == code, (event, payload, ack)
        assert isinstance(ack["message"], str)
    assert sent == []
    # A well-formed view of tracks the participant does not receive changes nothing.
    ok = await router.handle("alice", "sfu-view", {"views": [{"mid": "7", "height": 90}]})
    assert ok == {"ok": True}
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


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_VIEW = st.fixed_dictionaries(
    {},
    optional={
        "mid": st.one_of(st.text(max_size=4), _JSON),
        "height": st.one_of(st.integers(-10, 30000), _JSON),
        "visible": st.one_of(st.booleans(), _JSON),
        "preference": st.one_of(st.sampled_from(["auto", "low", "high"]), _JSON),
    },
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payload=st.one_of(
        _JSON, st.fixed_dictionaries({"views": st.one_of(st.lists(_VIEW, max_size=5), _JSON)})
    )
)
async def test_any_sfu_view_is_answered_and_changes_nothing(make_router: Any, payload: Any) -> None:
    router = make_router()

    async def send(event: str, data: dict) -> None:
        pass

    await router.join("alice", send)
    try:
        ack = await router.handle("alice", "sfu-view", payload)
        assert ack["ok"] is True or ack["error"] == "invalid_payload", ack
        assert router.stats()["participants"] == 1
    finally:
        await router.leave("alice")
