"""The aiortc and aioice internals sfu/media/aiortc/ports.py relies on are still there.

If one of these fails after an upgrade, the SFU would bind ephemeral ports again (an
operator's firewall then drops its media) or single-port mode would misroute: fix ports.py
before relaxing the pin in pyproject.toml. These tests touch private API on purpose.
"""

from __future__ import annotations

import inspect

import aioice.ice
import pytest
from aioice import stun
from aioice.ice import Connection, StunProtocol
from aiortc import RTCConfiguration, RTCPeerConnection

from sfu.media.aiortc import ports


def test_aiortc_gathers_through_a_patchable_private_method() -> None:
    # ports._gather replaces RTCPeerConnection.__gather, which setLocalDescription awaits.
    assert callable(getattr(RTCPeerConnection, "_RTCPeerConnection__gather", None))
    assert "__gather" in inspect.getsource(RTCPeerConnection.setLocalDescription)
    source = inspect.getsource(RTCPeerConnection)
    assert "self.__configuration = " in source
    assert "self.__iceTransports" in source


def test_aioice_gathers_each_component_through_an_instance_lookup() -> None:
    # An instance attribute get_component_candidates replaces the method per connection.
    source = inspect.getsource(Connection.gather_candidates)
    assert "self.get_component_candidates(" in source
    params = inspect.signature(Connection.get_component_candidates).parameters
    assert list(params) == ["self", "component", "addresses", "timeout"]
    # Given no address, aioice's own method gathers only the relayed candidate (and no
    # server-reflexive one, which it derives from host sockets).
    body = inspect.getsource(Connection.get_component_candidates)
    assert "for address in addresses:" in body
    assert "for protocol in host_protocols:" in body
    assert "self._protocols += host_protocols" in body


async def test_aioice_names_ports_uses() -> None:
    conn = Connection(ice_controlling=False)
    assert conn.local_username == conn._local_username
    conn._local_username = "abcdefgh"
    assert conn.local_username == "abcdefgh"  # _unique_ufrag renames before it is sent
    assert isinstance(conn._protocols, list)
    protocol = StunProtocol(conn)
    assert protocol.transactions == {} and protocol.receiver is conn
    assert callable(aioice.ice.server_reflexive_candidate)


def test_stun_integrity_check_as_the_demultiplexer_uses_it() -> None:
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    request.attributes["USERNAME"] = "abcd:efgh"
    request.add_message_integrity(b"password")
    parsed = stun.parse_message(bytes(request))
    assert parsed.check_message_integrity(b"password")
    assert not parsed.check_message_integrity(b"other")
    with pytest.raises(ValueError):
        stun.parse_message(b"\x80" + bytes(19))


@pytest.mark.webrtc
async def test_a_range_binds_the_host_candidates_of_a_plain_peer_connection(netns) -> None:
    from sfu.settings import IceSettings

    ports.use(IceSettings(udp_port_range="47000-47009", host_addresses=["10.213.0.1"]))
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    other = RTCPeerConnection(ports.unmanaged(RTCConfiguration(iceServers=[])))
    try:
        for p in (pc, other):
            p.addTransceiver("audio")
            await p.setLocalDescription(await p.createOffer())
        managed = [
            int(line.split()[5])
            for line in pc.localDescription.sdp.splitlines()
            if line.startswith("a=candidate")
        ]
        assert managed and all(47000 <= port <= 47009 for port in managed), managed
        unmanaged = [
            int(line.split()[5])
            for line in other.localDescription.sdp.splitlines()
            if line.startswith("a=candidate")
        ]
        assert unmanaged and not any(47000 <= port <= 47009 for port in unmanaged)
    finally:
        ports.use(None)
        await pc.close()
        await other.close()
