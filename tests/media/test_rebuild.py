"""Every way a connection can fail ends in a clean state the client can rebuild from.

A garbage answer, no answer in time, a subscriber that closes its connection, an answer to
a closed session, a stale failure arriving after the client asked for a new downlink, a
publisher whose connection died: each time the next ``sfu-subscribe`` (or a new publish
offer) gets a working connection, as many times as it happens.
"""

from __future__ import annotations

import pytest

from tests.support.peers import NumberedVideoTrack, Received, SfuPeer, Subscriber, ToneTrack

pytestmark = pytest.mark.webrtc


def latest_video(peer: Subscriber, user_id: str) -> Received | None:
    found = [r for r in peer.received.values() if r.user_id == user_id and r.kind == "video"]
    return found[-1] if found else None


async def gets_media(peer: Subscriber, user_id: str, frames: int = 10) -> None:
    """The newest track of ``user_id``'s camera decodes ``frames`` more frames."""
    start = len(r.numbers) if (r := latest_video(peer, user_id)) else 0
    first = r

    def more() -> bool:
        now = latest_video(peer, user_id)
        if now is None:
            return False
        return len(now.numbers) >= (start if now is first else 0) + frames

    await peer.wait_for(more, timeout=30)


def closed(peer: SfuPeer, target: str) -> list[str]:
    events = [p for e, p in peer.events if e == "sfu-connection-closed"]
    return [p["reason"] for p in events if p["target"] == target]


async def resubscribe(router, peer: Subscriber) -> None:
    ack = await router.handle(peer.user_id, "sfu-subscribe", {})
    assert ack == {"ok": True}


async def test_failed_downlinks_are_rebuilt_every_time(netns, make_router):
    router = make_router(negotiation_timeout_seconds=2, disconnected_timeout_seconds=3)
    alice = await SfuPeer(router, "alice").join()
    bob = await Subscriber(router, "bob").join()
    try:
        await alice.publish({"camera": NumberedVideoTrack(), "microphone": ToneTrack()})
        await gets_media(bob, "alice")
        for cycle in range(3):
            # A garbage answer: refused in the ack, the downlink closes, a new one works.
            bob.munge = lambda sdp, offer: "v=0\r\nthis is not an answer\r\n"
            await resubscribe(router, bob)
            await bob.wait_for(lambda n=3 * cycle + 1: len(closed(bob, "subscribe")) >= n)
            assert closed(bob, "subscribe")[-1] == "negotiation_failed"
            assert bob.acks[-1]["ok"] is False and bob.acks[-1]["error"] == "invalid_sdp"
            assert router.participants["bob"].subscribe is None
            bob.munge = None
            await resubscribe(router, bob)
            await gets_media(bob, "alice")

            # No answer in time.
            bob.answering = False
            await resubscribe(router, bob)
            await bob.wait_for(lambda n=3 * cycle + 2: len(closed(bob, "subscribe")) >= n)
            assert closed(bob, "subscribe")[-1] == "negotiation_timeout"
            # An answer to the closed session is refused cleanly.
            stale = bob.offers[-1]
            ack = await router.handle(
                "bob",
                "sfu-subscribe-answer",
                {"session": stale["session"], "description": {"type": "answer", "sdp": "v=0"}},
            )
            assert ack["error"] == "no_pending_offer"
            bob.answering = True
            await resubscribe(router, bob)
            await gets_media(bob, "alice")

            # The subscriber's connection goes away (closed by the peer).
            assert bob.subscribe_pc is not None
            await bob.subscribe_pc.close()
            await bob.wait_for(lambda n=3 * cycle + 3: len(closed(bob, "subscribe")) >= n)
            assert closed(bob, "subscribe")[-1] in ("closed", "failed", "disconnected")
            bob.subscribe_pc = None
            await resubscribe(router, bob)
            await gets_media(bob, "alice")

            # A stale session's failure, reported after the client asked for a new one,
            # leaves the new one alone.
            old = router.participants["bob"].subscribe
            assert old is not None
            await resubscribe(router, bob)
            await gets_media(bob, "alice")
            old._on_failure(old, "negotiation_failed", "late")
            await gets_media(bob, "alice")
            assert router.participants["bob"].subscribe is not None
            assert router.participants["bob"].downlink_closed is False
        assert router.stats()["consumers"] == 1 + 1  # alice's camera and microphone to bob
    finally:
        await alice.close()
        await bob.close()


async def test_a_dead_publish_connection_is_rebuilt_every_time(netns, make_router):
    router = make_router(disconnected_timeout_seconds=3)
    alice = await SfuPeer(router, "alice").join()
    bob = await Subscriber(router, "bob").join()
    try:
        for cycle in range(3):
            ack = await alice.publish({"camera": NumberedVideoTrack()})
            assert ack["ok"], ack
            await gets_media(bob, "alice")
            # The browser's connection dies; the server frees its producers.
            assert alice.publish_pc is not None
            await alice.publish_pc.close()
            alice.publish_pc = None
            await bob.wait_for(lambda: not router.producers, timeout=15)
            assert router.participants["alice"].publish is None
            assert len(closed(alice, "publish")) == cycle + 1
    finally:
        await alice.close()
        await bob.close()
