"""The SFU's UDP ports: every host candidate in ``ice.udp_port_range``, or every connection
on the one ``ice.udp_port`` (demultiplexed by STUN username, then remote address).

Real aiortc peers against a real Router, inside scripts/netns-run (10.213.0.1, 10.213.0.2).
The peers run in the test's process, so their configuration is marked ``ports.unmanaged``:
they keep ephemeral ports, as a browser would, and the SFU's are the only ones managed.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from aioice import stun
from av import VideoFrame
from hypothesis import given
from hypothesis import strategies as st

from sfu.loadtest import peer_configuration
from sfu.media import ice
from sfu.media.aiortc import ports
from sfu.media.router import Router
from sfu.settings import IceSettings, load_settings
from tests.conftest import free_udp_ports
from tests.support.peers import NumberedVideoTrack, SfuPeer, ToneTrack, draw_number

pytestmark = pytest.mark.webrtc

TAG_SHIFT = 12  # frame numbers carry their publisher's tag above bit 12


class TaggedVideoTrack(NumberedVideoTrack):
    """NumberedVideoTrack whose frame ``n`` shows ``tag << 12 | n``: whose frame it is."""

    def __init__(self, tag: int) -> None:
        super().__init__()
        self.tag = tag

    async def recv(self) -> VideoFrame:
        frame = await super().recv()
        gray = draw_number(self.tag << TAG_SHIFT | (self.number - 1) % (1 << TAG_SHIFT))
        chroma = np.full((gray.shape[0] // 2, gray.shape[1]), 128, dtype=np.uint8)
        tagged = VideoFrame.from_ndarray(np.concatenate([gray, chroma]), format="yuv420p")
        tagged.pts, tagged.time_base = frame.pts, frame.time_base
        return tagged


@pytest.fixture
async def sfu() -> AsyncIterator[Callable[..., Router]]:
    """Routers with ``ice`` setting overrides; afterwards the process is back to defaults."""
    made: list[Router] = []

    def make(**ice_overrides: Any) -> Router:
        router = Router(load_settings(overrides={"ice": ice_overrides}), "room")
        made.append(router)
        return router

    yield make
    for router in made:
        await router.close()
    ice.apply_host_addresses(IceSettings())
    await ports.close_shared_ports()


@pytest.fixture
async def peers() -> AsyncIterator[Callable[[Router, str], Awaitable[SfuPeer]]]:
    made: list[SfuPeer] = []

    async def join(router: Router, user_id: str) -> SfuPeer:
        configuration = ports.unmanaged(peer_configuration())
        peer = await SfuPeer(router, user_id, configuration).join()
        made.append(peer)
        return peer

    yield join
    for peer in made:
        await peer.close()


def candidate_ports(sdp: str) -> list[tuple[str, int]]:
    """(address, port) of every host candidate of an SDP."""
    found = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:") and " typ host" in line:
            fields = line.split()
            found.append((fields[4], int(fields[5])))
    return found


def sfu_connections(router: Router) -> list[Any]:
    """The aioice connections of every SFU peer connection of the router."""
    found = []
    for participant in router.participants.values():
        for session in (participant.publish, participant.subscribe):
            if session is None:
                continue
            for transceiver in session.pc.getTransceivers():
                connection = transceiver.receiver.transport.transport._connection
                if all(c is not connection for c in found):
                    found.append(connection)
    return found


def sfu_sdps(router: Router) -> list[str]:
    sdps = []
    for participant in router.participants.values():
        for session in (participant.publish, participant.subscribe):
            if session is not None and session.pc.localDescription is not None:
                sdps.append(session.pc.localDescription.sdp)
    return sdps


async def call(router: Router, peers: Any, names: list[str]) -> list[SfuPeer]:
    """Everyone publishes tagged video and a tone; returns once each sees every other and
    every SFU connection is connected."""
    joined = [await peers(router, name) for name in names]
    for tag, peer in enumerate(joined, start=1):
        ack = await peer.publish({"camera": TaggedVideoTrack(tag), "microphone": ToneTrack()})
        assert ack["ok"], ack
    await assert_everyone_sees_everyone(joined, frames=15)

    def states() -> list[str]:
        return [
            "none" if session is None else session.pc.connectionState
            for participant in router.participants.values()
            for session in (participant.publish, participant.subscribe)
        ]

    for _ in range(200):
        if set(states()) == {"connected"}:
            return joined
        await asyncio.sleep(0.05)
    pytest.fail(f"SFU connections not all connected: {states()}")


async def assert_everyone_sees_everyone(joined: list[SfuPeer], frames: int) -> None:
    for viewer in joined:
        for tag, publisher in enumerate(joined, start=1):
            if publisher is viewer:
                continue
            before = viewer.video_from(publisher.user_id)
            start = len(before.numbers) if before is not None else 0
            received = await viewer.wait_video(publisher.user_id, start + frames)
            numbers = received.numbers[start:]
            # Only that publisher's frames, clean and in order: no cross-talk between
            # connections that share one port.
            assert {n >> TAG_SHIFT for n in numbers} == {tag}, (viewer.user_id, numbers)
            assert all(b > a for a, b in zip(numbers, numbers[1:], strict=False)), numbers
            assert received.unclean == 0
            audio = next(
                r
                for r in viewer.received.values()
                if r.user_id == publisher.user_id and r.kind == "audio"
            )
            assert audio.frames > 0


# -- a port range ----------------------------------------------------------------------------
async def test_every_sfu_candidate_is_in_the_range(netns, sfu, peers):
    low = free_udp_ports(16)
    router = sfu(udp_port_range=f"{low}-{low + 15}")
    # Two peers (not more: aiortc encodes and decodes every stream on this 2-core machine):
    # 2 publish + 2 subscribe connections, one host candidate per address each.
    joined = await call(router, peers, ["alice", "bob"])
    connections = sfu_connections(router)
    assert len(connections) == 4
    bound = [p.local_candidate.port for c in connections for p in c._protocols]
    assert len(bound) == 8
    assert all(low <= port <= low + 15 for port in bound), bound
    # What the peers were told, and what they use.
    told = [port for sdp in sfu_sdps(router) for _, port in candidate_ports(sdp)]
    assert told and all(low <= port <= low + 15 for port in told), told
    for peer in joined:
        for pc in (peer.publish_pc, peer.subscribe_pc):
            remote = candidate_ports(pc.remoteDescription.sdp)
            assert remote and all(low <= port <= low + 15 for _, port in remote)
            # The peers themselves are not the SFU: their ports are the kernel's.
            local = candidate_ports(pc.localDescription.sdp)
            assert not any(low <= port <= low + 15 for _, port in local), local


async def test_a_used_up_range_fails_the_connection_with_a_clear_log_line(
    netns, sfu, peers, caplog
):
    low = free_udp_ports(1)
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("10.213.0.1", low))  # another program holds the range's only port
    try:
        router = sfu(udp_port_range=f"{low}-{low}", host_addresses=["10.213.0.1"])
        alice = await peers(router, "alice")
        ack = await asyncio.wait_for(alice.publish({"camera": NumberedVideoTrack()}), 10)
        assert not ack["ok"] and ack["error"] == "no_free_port", ack
        assert (
            f"the media server has no free UDP port (ice.udp_port_range {low}-{low})"
            in ack["message"]
        ), ack
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert (
            f"ICE: no UDP port free with ice.udp_port_range {low}-{low} on 10.213.0.1: "
            "this peer connection cannot connect" in errors
        ), errors
    finally:
        holder.close()


async def test_ports_of_closed_connections_are_used_again(netns, sfu, peers):
    low = free_udp_ports(4)
    router = sfu(udp_port_range=f"{low}-{low + 3}", host_addresses=["10.213.0.1"])
    # Two participants use all four ports (publish and subscribe each); after they leave, two
    # more get them.
    for round_ in range(2):
        names = [f"a{round_}", f"b{round_}"]
        await call(router, peers, names)
        bound = sorted(
            p.local_candidate.port for c in sfu_connections(router) for p in c._protocols
        )
        assert bound == [low, low + 1, low + 2, low + 3]
        for name in names:
            await router.leave(name)


# -- one shared port -------------------------------------------------------------------------
async def test_simultaneous_connections_share_the_single_port(netns, sfu, peers):
    port = free_udp_ports(1)
    router = sfu(udp_port=port)
    joined = await call(router, peers, ["alice", "bob"])
    connections = sfu_connections(router)
    assert len(connections) == 4
    # One socket per host address, every connection on both.
    shared = {(p.address, p.port): p for p in ports.shared_ports()}
    assert set(shared) == {("10.213.0.1", port), ("10.213.0.2", port)}
    for connection in connections:
        assert sorted(p.local_candidate.host for p in connection._protocols) == [
            "10.213.0.1",
            "10.213.0.2",
        ]
        assert {p.local_candidate.port for p in connection._protocols} == {port}
        for protocol in connection._protocols:
            assert (
                shared[(protocol.local_candidate.host, port)].by_ufrag[connection.local_username]
                is protocol
            )
        # The connection's pair is on the shared port.
        assert connection._nominated[1].protocol.local_candidate.port == port
    for sdp in sfu_sdps(router):
        assert {p for _, p in candidate_ports(sdp)} == {port}
    for peer in joined:
        for pc in (peer.publish_pc, peer.subscribe_pc):
            assert {p for _, p in candidate_ports(pc.remoteDescription.sdp)} == {port}
    # Media keeps flowing both ways on every connection.
    await assert_everyone_sees_everyone(joined, frames=15)


async def test_peers_from_one_address_are_told_apart_by_port(netns, sfu, peers):
    # host_addresses pins every ICE agent of the process (peers too) to 10.213.0.1: both peers
    # and the SFU share one IP; only the peers' ports tell their packets apart.
    port = free_udp_ports(1)
    router = sfu(udp_port=port, host_addresses=["10.213.0.1"])
    joined = await call(router, peers, ["alice", "bob"])
    (shared,) = ports.shared_ports()
    peer_addresses = {
        peer.user_id: {
            addr
            for pc in (peer.publish_pc, peer.subscribe_pc)
            for addr in candidate_ports(pc.localDescription.sdp)
        }
        for peer in joined
    }
    assert {host for addrs in peer_addresses.values() for host, _ in addrs} == {"10.213.0.1"}
    # Each peer's addresses map to its own connections only.
    owner = {
        id(protocol): user_id
        for user_id, participant in router.participants.items()
        for session in (participant.publish, participant.subscribe)
        for transceiver in session.pc.getTransceivers()
        for protocol in transceiver.receiver.transport.transport._connection._protocols
    }
    for addr, protocol in shared.by_address.items():
        assert addr in peer_addresses[owner[id(protocol)]], (addr, owner[id(protocol)])
    assert len(shared.by_address) == 4  # two connections a peer, one address each
    await assert_everyone_sees_everyone(joined, frames=15)


async def test_closed_connections_leave_the_shared_port_which_stays_open(netns, sfu, peers):
    port = free_udp_ports(1)
    router = sfu(udp_port=port, host_addresses=["10.213.0.1"])
    await call(router, peers, ["alice", "bob"])
    (shared,) = ports.shared_ports()
    assert len(shared.by_ufrag) == 4
    await router.leave("alice")
    # Alice's two connections are gone from the port; Bob's stay.
    assert len(shared.by_ufrag) == 2
    assert len(shared.by_address) == 2
    await router.leave("bob")
    await asyncio.sleep(0)
    assert shared.by_ufrag == {} and shared.by_address == {}
    assert ports.shared_ports() == [shared] and not shared.closed
    # The same socket serves new connections.
    await call(router, peers, ["carol", "dave"])
    assert ports.shared_ports() == [shared] and len(shared.by_ufrag) == 4


async def test_media_at_full_rate_through_the_fast_path_on_the_single_port(netns, sfu, peers):
    port = free_udp_ports(1)
    router = sfu(udp_port=port, host_addresses=["10.213.0.1"])
    alice, bob = await call(router, peers, ["alice", "bob"])
    # The receive fast path replaced the datagram_received of the connection's own protocol,
    # and the forwarding sender writes to the shared socket without aiortc's layers.
    (shared,) = ports.shared_ports()
    for connection in sfu_connections(router):
        protocol = connection._nominated[1].protocol
        assert protocol._sfu_direct
        assert isinstance(protocol.transport, ports._ConnectionTransport)
    for participant in router.participants.values():
        for consumer in participant.subscribe.consumers:
            assert consumer.track._udp.sendto == shared.sendto
    # Bob keeps up with what Alice's camera makes, not a frame missing: the rate is the
    # sender's, whatever the machine's load.
    camera = next(
        s.track
        for s in alice.publish_pc.getSenders()
        if s.track is not None and s.track.kind == "video"
    )
    received = bob.video_from("alice")
    start = len(received.numbers)
    received = await bob.wait_video("alice", start + 90)
    numbers = [n % (1 << TAG_SHIFT) for n in received.numbers[start:]]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), numbers
    behind = camera.number - 1 - numbers[-1]
    assert behind < 15, f"{behind} frames behind the camera"


# -- what a stranger sends to the shared port ------------------------------------------------
def binding_request(username: str | None, key: bytes | None, transaction_id: bytes = b"") -> bytes:
    message = stun.Message(
        message_method=stun.Method.BINDING,
        message_class=stun.Class.REQUEST,
        transaction_id=transaction_id or os.urandom(12),
    )
    if username is not None:
        message.attributes["USERNAME"] = username
    message.attributes["PRIORITY"] = 1
    message.attributes["ICE-CONTROLLED"] = 1
    if key is not None:
        message.add_message_integrity(key)
    message.add_fingerprint()
    return bytes(message)


def stranger_datagrams(known_ufrag: str) -> list[bytes]:
    rtp = struct.pack("!BBHII", 0x80, 96, 1, 2, 3) + os.urandom(100)
    return [
        b"",
        b"\x00",
        os.urandom(300),
        rtp,
        bytes([22, 254, 253]) + os.urandom(60),  # a DTLS record
        binding_request("nosuch:peer", b"x" * 22),  # unknown ufrag
        binding_request(f"{known_ufrag}:peer", b"wrong password 12345678"),
        binding_request(f"{known_ufrag}:peer", None),  # no MESSAGE-INTEGRITY
        binding_request(None, None),
        bytes(
            stun.Message(
                message_method=stun.Method.BINDING,
                message_class=stun.Class.RESPONSE,
                transaction_id=os.urandom(12),
            )
        ),
    ]


async def wait_dropped(count: int, timeout: float = 5) -> None:
    """Waits until the shared ports have dropped ``count`` datagrams in all."""
    for _ in range(int(timeout / 0.01)):
        if ports.dropped_datagrams() >= count:
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"{ports.dropped_datagrams()} datagrams dropped, not {count}")


async def test_unknown_and_unauthenticated_datagrams_change_nothing(netns, sfu, peers):
    port = free_udp_ports(1)
    router = sfu(udp_port=port, host_addresses=["10.213.0.1"])
    joined = await call(router, peers, ["alice", "bob"])
    (shared,) = ports.shared_ports()
    mapped = dict(shared.by_address)
    ufrags = dict(shared.by_ufrag)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("10.213.0.2", 0))
    stranger.setblocking(False)
    try:
        before = ports.dropped_datagrams()
        sent = stranger_datagrams(next(iter(ufrags)))
        for datagram in sent:
            stranger.sendto(datagram, ("10.213.0.1", port))
        await wait_dropped(before + len(sent))
        await asyncio.sleep(0.2)
        assert ports.dropped_datagrams() == before + len(sent)
        with pytest.raises(BlockingIOError):
            stranger.recv(2048)  # no answer to a stranger, not even a 401
    finally:
        stranger.close()
    assert shared.by_address == mapped and shared.by_ufrag == ufrags
    await assert_everyone_sees_everyone(joined, frames=15)


# Hypothesis draws in a thread while the call's event loop (aioice's and aiortc's timers use
# the random module) keeps running in this one: that is the point, not a strategy's doing.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
async def test_fuzzed_datagrams_at_the_shared_port_during_a_call(netns, sfu, peers):
    port = free_udp_ports(1)
    router = sfu(udp_port=port, host_addresses=["10.213.0.1"])
    joined = await call(router, peers, ["alice", "bob"])
    (shared,) = ports.shared_ports()
    mapped = dict(shared.by_address)
    ufrags = dict(shared.by_ufrag)
    known = next(iter(ufrags))
    loop = asyncio.get_running_loop()
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("10.213.0.2", 0))
    stranger.settimeout(0)

    def stun_like(draw_first: int, transaction_id: bytes, body: bytes) -> bytes:
        # A STUN header (magic cookie) with a random method/class and random attributes.
        length = len(body) - len(body) % 4
        header = struct.pack("!HHI", draw_first, length, stun.COOKIE)
        return header + transaction_id + body[:length]

    datagrams = st.one_of(
        st.binary(max_size=1500),
        st.builds(
            stun_like,
            st.integers(0, 0x3FFF),
            st.binary(min_size=12, max_size=12),
            st.binary(max_size=200),
        ),
        st.builds(
            binding_request,
            st.one_of(st.just(f"{known}:x"), st.text(min_size=0, max_size=20)),
            st.one_of(st.none(), st.binary(min_size=1, max_size=30)),
            st.binary(min_size=12, max_size=12),
        ),
        st.builds(
            lambda b: bytes([0x80 | (b[0] & 0x3F) if b else 0x80]) + b, st.binary(max_size=300)
        ),
    )

    @given(datagrams)
    def throw(datagram: bytes) -> None:
        before = ports.dropped_datagrams()
        stranger.sendto(datagram, ("10.213.0.1", port))
        # Handled by the SFU's loop (still running the call): dropped, nothing learnt.
        # (At least: the call's own peers may have a stray datagram dropped meanwhile.)
        asyncio.run_coroutine_threadsafe(wait_dropped(before + 1), loop).result()
        assert shared.by_address == mapped and shared.by_ufrag == ufrags

    try:
        await asyncio.to_thread(throw)
        with pytest.raises(BlockingIOError):
            stranger.recv(2048)
    finally:
        stranger.close()
    await assert_everyone_sees_everyone(joined, frames=15)


def test_binding_request_helper_is_authenticated_as_aioice_checks() -> None:
    # The stranger's requests above fail only where they are meant to: the same builder with
    # the right password passes aioice's own integrity check.
    key = hashlib.sha1(b"k").hexdigest()[:22].encode()
    message = stun.parse_message(binding_request("abcd:efgh", key))
    assert message.check_message_integrity(key)
    assert not stun.parse_message(binding_request("abcd:efgh", b"other")).check_message_integrity(
        key
    )
