"""Publishers come and go past one long-lived subscriber: its downlink stays bounded.

Each publisher that leaves frees its m-lines, and the next publisher's tracks take them
(same mid and SSRC, new msid), so the subscriber's offers and answers keep their size
however many publishers passed, while it keeps receiving a long-lived publisher all along.

CI runs ``CHURN_PUBLISHERS`` publishers (default 12); the issue's full run is
``CHURN_PUBLISHERS=200`` (see the report in the docstring of the test for timings).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest

from tests.support.peers import (
    NumberedVideoTrack,
    SfuPeer,
    Subscriber,
    ToneTrack,
    assert_in_order,
)

pytestmark = pytest.mark.webrtc

PUBLISHERS = int(os.environ.get("CHURN_PUBLISHERS", "12"))
# Consecutive publishers draw numbers from far apart (the anchor's start at 0), so a frame
# of the one who left, shown as the newcomer's, is told apart from the newcomer's own.
FIRSTS = (20_000, 45_000)


def describe(subscriber: SfuPeer, router: Any, i: int) -> str:
    """What the subscriber decoded of the newcomer and of the one before, and the server's
    consumers, for a failure message."""
    got = {
        name: (r.numbers[-8:], r.frames) if r is not None else None
        for name in (f"p{i - 1}", f"p{i}")
        for r in [subscriber.video_from(name)]
    }
    consumers = [
        {k: c[k] for k in ("userId", "kind", "mid", "forwarded", "waitingKeyframe", "sending")}
        for c in router.stats()["consumerList"]
        if c["subscriber"] == "sub"
    ]
    return f"decoded {got}; consumers {consumers}; tracks {subscriber.tracks}"


async def test_publishers_come_and_go_past_one_subscriber(netns, make_router):
    router = make_router()
    subscriber = Subscriber(router, "sub")
    await subscriber.join()
    anchor = await SfuPeer(router, "anchor").join()
    started = time.monotonic()
    try:
        await anchor.publish({"camera": NumberedVideoTrack(), "microphone": ToneTrack()})
        await subscriber.wait_frames("anchor", 10)
        sizes: list[int] = []
        lines: list[int] = []
        for i in range(PUBLISHERS):
            peer = await SfuPeer(router, f"p{i}").join()
            first = FIRSTS[i % 2]
            try:
                ack = await peer.publish(
                    {"camera": NumberedVideoTrack(first=first), "microphone": ToneTrack()}
                )
                assert ack["ok"], ack
                # The newcomer's own picture, none of the previous one's, intact and in order.
                try:
                    received = await subscriber.wait_frames(f"p{i}", 5)
                except TimeoutError:
                    pytest.fail(f"no frames of p{i}: {describe(subscriber, router, i)}")
                numbers = list(received.numbers)
                assert all(first <= n < first + 20_000 for n in numbers), (i, numbers)
                assert_in_order(received, 5)
            finally:
                await router.leave(f"p{i}")
                await peer.close()
            session = router.participants["sub"].subscribe
            assert session is not None and session.number == 1  # never a new downlink
            sizes.append(len(subscriber.answers[-1]))
            lines.append(subscriber.m_lines())
        # The anchor's video came all along: in order, never stopped for long.
        await subscriber.wait_for(lambda: router.stats()["consumers"] == 2)
        anchor_video = subscriber.video_from("anchor")
        assert anchor_video is not None
        assert_in_order(anchor_video, 30)
        gaps = [b - a for a, b in zip(anchor_video.times, anchor_video.times[1:], strict=False)]
        assert max(gaps) < 3, max(gaps)
        # Bounded: the anchor's two m-lines and the two a publisher takes, whatever the count.
        assert max(lines) <= 4, lines
        assert max(sizes) <= sizes[0] + 200, sizes
        assert subscriber.answer_errors == []
        assert not [e for e, _ in subscriber.events if e == "sfu-connection-closed"]
    finally:
        print(f"{PUBLISHERS} publishers in {time.monotonic() - started:.0f} s")
        await subscriber.close()
        await anchor.close()
        await asyncio.sleep(0)
