"""Leaving, rejoining and closing leave nothing behind: connections, tasks, threads."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref

import pytest

from tests.support.link import LinkEmulator
from tests.support.peers import NumberedVideoTrack, SfuPeer, ToneTrack, assert_in_order

pytestmark = pytest.mark.webrtc


def media_threads() -> list[str]:
    # aiortc starts one "<kind>-decoder" thread per receiver; executor workers are pooled.
    return sorted(t.name for t in threading.enumerate() if "decoder" in t.name)


def other_tasks() -> int:
    """Running tasks besides the test's own."""
    return len(asyncio.all_tasks() - {asyncio.current_task()})


async def settle(condition, timeout: float = 15) -> None:
    """Polls (in the calling task) until ``condition()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out; tasks: " + repr(
            [t.get_coro() for t in asyncio.all_tasks()]
        )
        await asyncio.sleep(0.1)


async def test_leave_and_rejoin_leave_nothing_behind(netns, make_router):
    router = make_router()
    threads_before = media_threads()
    tasks_before = other_tasks()
    connections: list[weakref.ref] = []

    for _round in range(2):
        alice = await SfuPeer(router, "alice").join()
        bob = await SfuPeer(router, "bob").join()
        await alice.publish({"camera": NumberedVideoTrack(), "microphone": ToneTrack()})
        assert_in_order(await bob.wait_video("alice", 20), 20)
        connections += [
            weakref.ref(session.pc)
            for p in router.participants.values()
            for session in (p.publish, p.subscribe)
            if session is not None
        ]
        await router.leave("alice")
        # Bob's downlink turns alice's m-lines inactive; his connection stays.
        await settle(lambda: router.stats()["consumers"] == 0)
        assert router.participants["bob"].subscribe is not None
        await router.leave("bob")
        await alice.close()
        await bob.close()
        stats = router.stats()
        assert stats["participants"] == 0
        assert stats["connections"] == 0
        assert stats["producers"] == []

    assert len(connections) == 4
    await settle(lambda: media_threads() == threads_before)
    # The router's own ticker stays until the router closes.
    await settle(lambda: other_tasks() <= tasks_before + 1)
    gc.collect()
    assert [ref for ref in connections if ref() is not None] == []

    await router.close()
    await settle(lambda: other_tasks() <= tasks_before)


async def test_close_ends_every_connection(netns, make_router):
    router = make_router()
    alice = await SfuPeer(router, "alice").join()
    bob = await SfuPeer(router, "bob").join()
    try:
        await alice.publish({"camera": NumberedVideoTrack()})
        await bob.wait_video("alice", 5)
        pcs = [
            s.pc
            for p in router.participants.values()
            for s in (p.publish, p.subscribe)
            if s is not None
        ]
        await router.close()
        assert {pc.connectionState for pc in pcs} == {"closed"}
        assert router.stats()["participants"] == 0
        assert await router.handle("alice", "sfu-subscribe", {}) == {
            "ok": False,
            "error": "not_in_room",
            "message": "join the room first",
        }
    finally:
        await alice.close()
        await bob.close()


async def test_silent_peers_are_closed_after_the_timeout(netns, make_router):
    # aiortc would report these connections failed only after ~30 s of ICE consent checks.
    router = make_router(disconnected_timeout_seconds=4)
    alice = await SfuPeer(router, "alice").join()
    bob = await SfuPeer(router, "bob").join()
    carol = await SfuPeer(router, "carol").join()
    try:
        await alice.publish({"camera": NumberedVideoTrack()})
        await bob.wait_video("alice", 10)
        await carol.wait_video("alice", 10)
        # Bob's browser vanishes without a word: nothing more comes from his downlink.
        LinkEmulator(drop=lambda data: True).attach(bob.subscribe_pc)
        closed = ("sfu-connection-closed", {"target": "subscribe", "reason": "disconnected"})
        await settle(lambda: closed in bob.events, timeout=15)
        assert router.participants["bob"].subscribe is None
        # Carol is not affected, and bob can ask for a new downlink.
        before = len(carol.video_from("alice").numbers)
        try:
            await carol.wait_video("alice", before + 15)
        except TimeoutError:
            raise AssertionError(
                (
                    router.stats(),
                    before,
                    len(carol.video_from("alice").numbers),
                    carol.events[-3:],
                    [
                        (
                            p.user_id,
                            p.publish and p.publish.pc.connectionState,
                            p.subscribe and p.subscribe.pc.connectionState,
                        )
                        for p in router.participants.values()
                    ],
                )
            ) from None
        assert (await router.handle("bob", "sfu-subscribe", {}))["ok"]
        await settle(lambda: router.stats()["consumers"] == 2)

        # The publisher goes silent: its producers end for everyone.
        LinkEmulator(drop=lambda data: True).attach(alice.publish_pc)
        closed = ("sfu-connection-closed", {"target": "publish", "reason": "disconnected"})
        await settle(lambda: closed in alice.events, timeout=15)
        assert router.participants["alice"].publish is None
        assert router.stats()["producers"] == []
        await settle(lambda: router.stats()["consumers"] == 0)
    finally:
        for peer in (alice, bob, carol):
            await peer.close()
