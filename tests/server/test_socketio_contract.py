"""What sfu/server/socketio_server.py relies on in python-socketio's private API, pinned.

The gate replaces ``AsyncServer._handle_eio_message``: if python-socketio changes how it
dispatches packets (a new packet type, another helper), these fail first and say where.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import socketio
from socketio import packet

from sfu.metrics import Metrics
from sfu.rooms import RoomRegistry
from sfu.server.signaling import Signaling
from sfu.settings import Settings
from sfu.wire import StrictJson

# The names upstream's dispatcher uses: ours reproduces it on top of the same helpers.
UPSTREAM_DISPATCH_NAMES = {
    "ACK",
    "BINARY_ACK",
    "BINARY_EVENT",
    "CLIENT_DISCONNECT",
    "CONNECT",
    "CONNECT_ERROR",
    "DISCONNECT",
    "EVENT",
    "ValueError",
    "_binary_packet",
    "_handle_ack",
    "_handle_connect",
    "_handle_disconnect",
    "_handle_event",
    "add_attachment",
    "data",
    "id",
    "manager",
    "namespace",
    "packet",
    "packet_class",
    "packet_type",
    "reason",
    "sid_from_eio_sid",
}


def test_python_socketio_is_the_tested_release() -> None:
    assert version("python-socketio").startswith("5."), "re-check sfu/server/socketio_server.py"


def test_upstream_dispatch_is_the_one_reproduced() -> None:
    names = set(socketio.AsyncServer._handle_eio_message.__code__.co_names)
    assert names == UPSTREAM_DISPATCH_NAMES
    assert packet.packet_names == [
        "CONNECT",
        "DISCONNECT",
        "EVENT",
        "ACK",
        "CONNECT_ERROR",
        "BINARY_EVENT",
        "BINARY_ACK",
    ]


def test_private_helpers_keep_their_signatures() -> None:
    def params(name: str) -> list[str]:
        return list(inspect.signature(getattr(socketio.AsyncServer, name)).parameters)

    assert params("_handle_connect") == ["self", "eio_sid", "namespace", "data"]
    assert params("_handle_disconnect") == ["self", "eio_sid", "namespace", "reason"]
    assert params("_send_packet") == ["self", "eio_sid", "pkt"]
    assert list(inspect.signature(packet.Packet.decode).parameters) == ["self", "encoded_packet"]


def test_the_server_reads_with_its_own_strict_json_only() -> None:
    settings = Settings()
    sio = Signaling(settings, RoomRegistry(settings), Metrics()).sio
    assert isinstance(sio.packet_class.json, StrictJson)
    assert packet.Packet.json is not sio.packet_class.json  # clients in-process keep theirs
    assert sio._binary_packet == {}
    # The header (type, ack id) is read before the payload, so a refused payload still
    # gets its answer.
    pkt = sio.packet_class(encoded_packet='27["chat-message",{"x":NaN}]')
    assert (pkt.packet_type, pkt.id, pkt.data) == (packet.EVENT, 7, None)
    assert "NaN" in pkt.problem
    good = sio.packet_class(encoded_packet='23["chat-message",{"message":"hi"}]')
    assert (good.id, good.data, good.problem) == (3, ["chat-message", {"message": "hi"}], None)
