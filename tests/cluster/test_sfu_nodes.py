"""An SFU room joined through a node that does not run it: signaling relayed, media direct."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from sfu.loadtest import SocketIORouter
from tests.cluster.conftest import connect, until
from tests.conftest import Client, RunningServer
from tests.support.peers import NumberedVideoTrack, SfuPeer, ToneTrack, assert_in_order

Node = Callable[..., Awaitable[RunningServer]]


@pytest.mark.webrtc
async def test_an_sfu_room_through_the_node_that_does_not_run_it(
    netns: None, node: Node, made: list[Client]
) -> None:
    a, b = await node("a"), await node("b")
    host = await connect(a, made)
    await host.join("media", "host", mode="sfu")  # the room is a's
    routers = {"alice": SocketIORouter(b.url, "media"), "bob": SocketIORouter(b.url, "media")}
    alice = await SfuPeer(routers["alice"], "alice").join()
    bob = await SfuPeer(routers["bob"], "bob").join()
    try:
        ack = await alice.publish({"camera": NumberedVideoTrack(), "microphone": ToneTrack()})
        assert ack["ok"], ack
        # Both sockets are b's; the router, its producers and consumers are a's.
        router = a.server.rooms.get("media").router
        assert b.server.rooms.get("media") is None
        await until(
            lambda: (
                len(router.producers) == 2 and all(p.frames > 10 for p in router.producers.values())
            ),
            timeout=30,
            what="alice's media at a's router",
        )
        video = await until(
            lambda: next((r for r in bob.received.values() if r.kind == "video"), None),
            timeout=30,
            what="a video track at bob",
        )
        await until(lambda: len(video.numbers) >= 30, timeout=30, what="30 frames at bob")
        assert_in_order(video, 30)
        assert video.user_id == "alice"
        # Bob's downlink answer went through b to a, and a offered it through Redis to b.
        assert any(e == "sfu-subscribe-offer" for e, _ in bob.events)
    finally:
        for peer in (alice, bob):
            await peer.close()
        for router_ in routers.values():
            await router_.close()
        await asyncio.sleep(0)
