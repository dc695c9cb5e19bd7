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
from typing import Any

from sfu.cluster import Cluster
from sfu.refusal import Refusal
from sfu.rooms import Participant, Room, RoomRegistry
from sfu.server.signaling import Connection, Signaling

log = logging.getLogger("sfu.server.cluster")


class ClusterEvents:
    """Routes a node's client events to their rooms' nodes, and runs the relayed ones."""

    def __init__(self, cluster: Cluster, rooms: RoomRegistry, signaling: Signaling) -> None:
        self.cluster = cluster
        self.rooms = rooms
        self.signaling = signaling
        self.bound: dict[str, str] = {}  # sid of this node -> the node its room is on
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
        owner = self.bound.get(sid)
        if owner is None:
            if event != "join-room" or not isinstance(data, dict) or "roomId" not in data:
                return None
            try:
                room_id = self.signaling.limits.ident(str(data.get("roomId")), "roomId")
            except Refusal:
                return None  # refused here, with the same words
            owner = await self.cluster.owner_for(room_id)
            if owner == self.cluster.node_id:
                return None
        connection = self.signaling.connections.get(sid)
        address = connection.address if connection is not None else "?"
        answer = await self.cluster.relay.ask(owner, sid, address, event, data)
        if event == "join-room" and answer.get("ok"):
            self.bound[sid] = owner
        elif event == "leave-room" and answer.get("ok"):
            self.bound.pop(sid, None)
        return answer

    async def _local_gone(self, sid: str) -> None:
        owner = self.bound.pop(sid, None)
        if owner is not None:
            await self.cluster.relay.tell(owner, "gone", sid)

    async def _departed(self, origin: str, sid: str) -> None:
        if self.bound.get(sid) == origin:
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
        return remote | set(self.bound.values())

    async def _nodes_lost(self, lost: set[str]) -> None:
        for sid, owner in list(self.bound.items()):
            if owner in lost:  # the app reconnects and rejoins: the room is taken over
                del self.bound[sid]
                await self.signaling.sio.disconnect(sid, ignore_queue=True)
        for sid, connection in list(self.signaling.connections.items()):
            if connection.node in lost:
                await self.signaling.disconnected(sid)
