"""Settings changed on a running server reach what they tune, without a restart.

``sfu settings set`` (the operator's way) against a real server; the effect is observed
where a user would feel it: the publisher's encoder is told to send less.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sfu.media.aiortc import sender as tx
from tests.conftest import Client
from tests.support.peers import NumberedVideoTrack, SfuPeer, SocketRouter
from tests.test_cli import sfu

TOKEN = "live-settings-token"


async def cli(*args: str) -> Any:
    # The CLI blocks on HTTP; the server under test runs on this event loop.
    return await asyncio.to_thread(sfu, *args)


def target(peer: SfuPeer) -> int | None:
    """The publisher's VP8 encoder target (aiortc makes the encoder at the first frame)."""
    encoder = tx.sender_packer(peer.publish_sender("video"))
    return None if encoder is None else encoder.target_bitrate


async def wait_target(peer: SfuPeer, condition: Any, timeout: float, what: str) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (value := target(peer)) is None or not condition(value):
        if loop.time() > deadline:
            raise AssertionError(f"{what}: the publisher's target is {value}")
        await asyncio.sleep(0.1)
    return value


@pytest.mark.webrtc
async def test_lowered_bitrate_cap_reaches_a_live_publisher(netns: None, make_server) -> None:
    server = await make_server(auth={"admin_token": TOKEN})
    client = await Client(server.url).connect()
    second = await Client(server.url).connect()
    peer = SfuPeer(SocketRouter(client, "cap", "Alice"), "alice")
    try:
        await peer.join()
        ack = await peer.publish({"camera": NumberedVideoTrack(noise=128)})
        assert ack["ok"], ack
        assert "b=AS:1500\r\n" in ack["description"]["sdp"]
        # aiortc's VP8 encoder takes the REMB it receives as its target (250k..1.5M bit/s);
        # on loopback the server's estimate, capped at the default 1500 kbps, climbs high.
        await wait_target(peer, lambda b: b >= 600_000, 20, "no high estimate first")

        result = await cli(
            "settings", "set", "sfu.max_video_bitrate_kbps", "300",
            "--server", server.url, "--token", TOKEN, "--json",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert '"sfu.max_video_bitrate_kbps"' in result.stdout
        assert server.settings.sfu.max_video_bitrate_kbps == 300

        # The next REMB carries the new cap: the encoder drops to it and stays there.
        await wait_target(peer, lambda b: b <= 300_000, 10, "the new cap never arrived")
        for _ in range(10):
            await asyncio.sleep(0.1)
            assert (target(peer) or 0) <= 300_000
        # A publisher that negotiates now is told the new cap in SDP too.
        bob = SfuPeer(SocketRouter(second, "cap", "Bob"), "bob")
        await bob.join()
        ack = await bob.publish({"camera": NumberedVideoTrack()})
        assert "b=AS:300\r\n" in ack["description"]["sdp"], ack["description"]["sdp"]
        await bob.close()
    finally:
        await peer.close()
        await client.close()
        await second.close()


@pytest.mark.webrtc
async def test_announced_address_applies_to_the_next_answer(netns: None, make_server) -> None:
    server = await make_server(auth={"admin_token": TOKEN})
    client = await Client(server.url).connect()
    peer = SfuPeer(SocketRouter(client, "announce", "Alice"), "alice")
    try:
        result = await cli(
            "settings", "set", "ice.announced_address", "10.213.0.2",
            "--server", server.url, "--token", TOKEN, "--json",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert '"restart_required": []' in result.stdout, result.stdout
        await peer.join()
        ack = await peer.publish({"camera": NumberedVideoTrack()})
        candidates = [
            line for line in ack["description"]["sdp"].splitlines() if "a=candidate:" in line
        ]
        # Gathered on both namespace addresses, all announced as the one set.
        assert candidates and all(" 10.213.0.2 " in line for line in candidates), candidates
    finally:
        await peer.close()
        await client.close()
