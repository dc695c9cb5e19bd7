"""The signaling side of a cluster: events carried to the node that runs the room.

A socket is *bound* to a room's node (its owner, sfu/cluster) by a join that node answered;
from then on every event of that socket goes there through the relay, until it leaves, is
taken out by that node (``departed``) or disconnects (``gone``). The owner keeps a
:class:`~sfu.server.signaling.Connection` for each remote socket, so its rate limits, grants
and rooms work as for its own. When a node's lease runs out, the sockets bound to it are
disconnected here (their apps rejoin and the room is taken over), and its sockets are taken out
of this node's rooms.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sfu.cluster import Cluster
from sfu.refusal import Refusal
from sfu.rooms import Participant, Room, RoomRegistry
from sfu.server.signaling import Connection, Signaling

log = logging.getLogger("sfu.server.cluster")


@dataclass
class Binding:
    """A socket of this node in (``seated``) or knocking on a room of another node."""

    owner: str
    room_id: str
    seated: bool


class ClusterEvents:
    """Routes a node's client events to their rooms' nodes, and runs the relayed ones."""

    def __init__(self, cluster: Cluster, rooms: RoomRegistry, signaling: Signaling) -> None:
        self.cluster = cluster
        self.rooms = rooms
        self.signaling = signaling
        self.bound: dict[str, Binding] = {}  # sid of this node -> where its room is
        signaling.forward = self.forward
        signaling.before_join = self.bring_here
        signaling.on_disconnect.append(self._local_gone)
        signaling.on_leave.append(self._left)
        relay = cluster.relay
        relay.on_ask = self._asked
        relay.on_gone = self._remote_gone
        relay.on_departed = self._departed
        cluster.watched = self._watched
        cluster.on_nodes_lost.append(self._nodes_lost)
        cluster.load = self._load
        signaling.sio.queue_reachable = lambda: cluster.reachable

    def _load(self) -> dict[str, Any]:
        stats = self.rooms.stats()
        return {"participants": stats["participants"], "rooms": stats["rooms"]}

    # -- this node's sockets -----------------------------------------------------------------
    async def forward(self, sid: str, event: str, data: Any) -> dict[str, Any] | None:
        """The answer of the room's node if it is another one; None to handle it here."""
        bound = self.bound.get(sid)
        if event != "join-room":
            if bound is None:
                return None
            return await self._ask(bound.owner, sid, event, data)
        room_id = self._room_of(data)
        if room_id is None:
            return None  # refused here, with the same words
        if bound is not None and (bound.seated or bound.room_id == room_id):
            owner = bound.owner  # it answers already_joined, or lets the knock in
        else:
            if bound is not None:  # knocking on another room: that knock is given up
                del self.bound[sid]
                await self.cluster.relay.tell(bound.owner, "gone", sid)
            if self.rooms.locate(sid) is not None:
                return None  # in a room of this node: already_joined, here
            owner = await self.cluster.owner_for(room_id)
            if owner == self.cluster.node_id:
                return None
            await self.signaling.cancel_knock(sid)  # a knock here is given up too
        answer = await self._ask(owner, sid, event, data)
        if answer.get("ok"):
            self.bound[sid] = Binding(owner, room_id, seated=not answer.get("lobby"))
        return answer

    async def _ask(self, owner: str, sid: str, event: str, data: Any) -> dict[str, Any]:
        connection = self.signaling.connections.get(sid)
        address = connection.address if connection is not None else "?"
        answer = await self.cluster.relay.ask(owner, sid, address, event, data)
        if event == "leave-room" and answer.get("ok"):
            self.bound.pop(sid, None)
        return answer

    def _room_of(self, data: Any) -> str | None:
        if not isinstance(data, dict) or not isinstance(data.get("roomId"), str):
            return None
        try:
            return self.signaling.limits.ident(data["roomId"], "roomId")
        except Refusal:
            return None

    async def _local_gone(self, sid: str) -> None:
        bound = self.bound.pop(sid, None)
        if bound is not None:
            await self.cluster.relay.tell(bound.owner, "gone", sid)

    async def _departed(self, origin: str, sid: str) -> None:
        bound = self.bound.get(sid)
        if bound is not None and bound.owner == origin:
            del self.bound[sid]

    # -- the rooms this node runs ----------------------------------------------------------
    async def bring_here(self, room_id: str) -> None:
        """A join for a room this node runs but does not hold: restored from the directory
        (this node restarted, or took it over from a node that stopped or died)."""
        if self.rooms.get(room_id) is not None:
            return
        doc = await self.cluster.stored(room_id)
        if doc is not None and self.rooms.get(room_id) is None:
            self.rooms.restore(doc)

    async def _asked(
        self, origin: str, sid: str, address: str, event: str, data: Any
    ) -> dict[str, Any]:
        connection = self.signaling.connections.get(sid)
        if connection is None:
            connection = Connection(address, node=origin)
            self.signaling.connections[sid] = connection
        elif connection.node != origin:  # not a socket of the asking node
            return {"ok": False, "error": "not_connected", "message": "not connected"}
        answer = await self.signaling.handle_relayed(sid, event, data)
        self._forget_if_idle(sid)
        return answer

    def _forget_if_idle(self, sid: str) -> None:
        """A remote socket that is in no room and knocks nowhere is nothing of this node's."""
        connection = self.signaling.connections.get(sid)
        if connection is None or connection.node is None:
            return
        if self.rooms.locate(sid) is None and not self.signaling.knocking(sid):
            del self.signaling.connections[sid]

    async def _remote_gone(self, origin: str, sid: str) -> None:
        connection = self.signaling.connections.get(sid)
        if connection is not None and connection.node == origin:
            await self.signaling.disconnected(sid)

    async def _left(self, room: Room, participant: Participant) -> None:
        connection = self.signaling.connections.get(participant.sid)
        if connection is None or connection.node is None:
            return  # this node's own socket, or one that is already gone
        await self.cluster.relay.tell(connection.node, "departed", participant.sid)
        self._forget_if_idle(participant.sid)

    # -- nodes that died ---------------------------------------------------------------------
    def _watched(self) -> set[str]:
        remote = {c.node for c in self.signaling.connections.values() if c.node is not None}
        return remote | {b.owner for b in self.bound.values()}

    async def _nodes_lost(self, lost: set[str]) -> None:
        for sid, bound in list(self.bound.items()):
            if bound.owner in lost:  # the app reconnects and rejoins: the room is taken over
                del self.bound[sid]
                await self.signaling.sio.disconnect(sid, ignore_queue=True)
        for sid, connection in list(self.signaling.connections.items()):
            if connection.node in lost:
                await self.signaling.disconnected(sid)
