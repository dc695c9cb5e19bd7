"""A track one side cannot do stays that track's problem.

A subscriber that rejects one m-line (``m=video 0``, no ICE credentials, out of BUNDLE:
what Firefox answers for H.264 when it has no decoder) still gets every other track; the
rejected consumer is marked and never offered again on that downlink. A publisher whose
offer lacks the room's video codec is told so in the ``sfu-publish`` ack.
"""

from __future__ import annotations

import pytest
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from tests.support.peers import (
    NumberedVideoTrack,
    SfuPeer,
    Subscriber,
    ToneTrack,
    assert_in_order,
    reject_m_line,
)

pytestmark = pytest.mark.webrtc


def rejecting(user_id: str, kind: str = "video"):
    """A munge that rejects every m-line carrying ``user_id``'s track of ``kind``."""

    def munge(sdp: str, offer: dict) -> str:
        for entry in offer["tracks"]:
            if entry["userId"] == user_id and entry["kind"] == kind:
                sdp = reject_m_line(sdp, entry["mid"])
        return sdp

    return munge


@pytest.mark.parametrize("first", [True, False], ids=["first-m-line", "later-m-line"])
async def test_a_rejected_m_line_leaves_the_others_working(netns, make_router, first):
    router = make_router()
    alice = await SfuPeer(router, "alice").join()
    bob = await SfuPeer(router, "bob").join()
    # bob publishes first when his video is to be the downlink's first m-line.
    order = [bob, alice] if first else [alice, bob]
    for peer in order:
        await peer.publish({"camera": NumberedVideoTrack(), "microphone": ToneTrack()})
    await alice.wait_video("bob", 5)
    carol = await Subscriber(router, "carol", munge=rejecting("bob")).join()
    try:
        assert_in_order(await carol.wait_frames("alice", 15), 15)
        # Audio from both, bob's included.
        await carol.wait_for(
            lambda: all(
                any(
                    r.user_id == u and r.kind == "audio" and r.frames > 20
                    for r in carol.received.values()
                )
                for u in ("alice", "bob")
            )  # fmt: skip
        )
        assert carol.video_from("bob") is None or not carol.video_from("bob").numbers
        assert carol.answer_errors == []
        assert not [e for e, _ in carol.events if e == "sfu-connection-closed"]
        stats = router.stats()
        assert stats["rejectedConsumers"] == 1
        [entry] = [o for o in stats["consumerList"] if o["rejected"]]
        assert (entry["subscriber"], entry["userId"], entry["kind"]) == ("carol", "bob", "video")

        # A newcomer: carol gets its video too; bob's stays rejected, at port 0, not retried.
        dave = await SfuPeer(router, "dave").join()
        await dave.publish({"camera": NumberedVideoTrack()})
        assert_in_order(await carol.wait_frames("dave", 10), 10)
        offer = carol.offers[-1]
        bobs = [t for t in offer["tracks"] if t["userId"] == "bob" and t["kind"] == "video"]
        assert len(bobs) == 1 and bobs[0]["rejected"] and not bobs[0]["active"]
        section = next(
            s for s in offer["description"]["sdp"].split("m=")[1:]
            if f"a=mid:{bobs[0]['mid']}\r\n" in s
        )  # fmt: skip
        assert section.startswith("video 0 ")
        assert all(
            len([t for t in o["tracks"] if t["userId"] == "bob" and t["kind"] == "video"]) == 1
            for o in carol.offers
        )
        assert router.stats()["rejectedConsumers"] == 1
        # alice's picture never stopped.
        count = len(carol.video_from("alice").numbers)
        assert_in_order(await carol.wait_frames("alice", count + 10), count + 10)
        await dave.close()
    finally:
        for peer in (alice, bob, carol):
            await peer.close()


async def test_a_publisher_without_the_rooms_codec_is_told(netns, make_router):
    router = make_router(video_codec="H264")
    alice = await SfuPeer(router, "alice").join()
    bob = await SfuPeer(router, "bob").join()
    pc = RTCPeerConnection(alice.configuration)
    try:
        video = pc.addTransceiver(NumberedVideoTrack(), direction="sendonly")
        video.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/VP8"]
        )
        pc.addTransceiver(ToneTrack(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        ack = await router.handle(
            "alice",
            "sfu-publish",
            {"description": {"type": "offer", "sdp": pc.localDescription.sdp}},
        )
        assert ack["ok"], ack
        assert ack["unsupported"] == [
            {"mid": video.mid, "kind": "video", "reason": "unsupported_codec",
             "codec": "video/H264"}
        ]  # fmt: skip
        assert [(t["kind"], t["active"]) for t in ack["tracks"]] == [
            ("video", False),
            ("audio", True),
        ]
        await pc.setRemoteDescription(RTCSessionDescription(**ack["description"]))
        # Its audio still reaches the others.
        await bob.changed.wait()

        async def heard() -> bool:
            return any(r.user_id == "alice" and r.frames > 20 for r in bob.received.values())

        for _ in range(100):
            if await heard():
                break
            bob.changed.clear()
            await bob.changed.wait()
        assert await heard()
    finally:
        await pc.close()
        await alice.close()
        await bob.close()
