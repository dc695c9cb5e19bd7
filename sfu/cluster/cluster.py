"""This node's place in a cluster: its lease, the rooms it owns in the directory, its relay.

Switched on by ``server.redis_url`` (docs/deployment.md, Several nodes). A room lives on one
node, its *owner*, as LiveKit's rooms do: the owner runs the room (participants, chat,
moderation, its SFU router) exactly as a single server does. Any node takes any socket; a
socket's events go to the owner of its room through the relay, and what the owner sends back
goes through python-socketio's AsyncRedisManager. So one room may have participants on every
node, and the media of an SFU room goes to its owner's ICE candidates.

Every ``node_lease_seconds / 3`` the node renews its lease, writes the documents of its rooms
that changed (a room killed with its node loses at most that much chat), renews the others,
and looks at the leases of the nodes it depends on: ``on_nodes_lost`` is told which died.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from sfu.cluster.directory import RoomDirectory
from sfu.cluster.relay import Relay
from sfu.refusal import Refusal
from sfu.rooms import Room, RoomRegistry
from sfu.settings import Settings

log = logging.getLogger("sfu.cluster")


def default_node_id() -> str:
    return f"{socket.gethostname()[:40]}-{secrets.token_hex(3)}"


class Cluster:
    """The node, its Redis connections, its lease and its rooms' directory entries."""

    def __init__(self, settings: Settings, rooms: RoomRegistry) -> None:
        server = settings.server
        assert server.redis_url is not None
        self.settings = settings
        self.rooms = rooms
        self.node_id = server.node_id or default_node_id()
        url = server.redis_url.get_secret_value()
        # Commands fail fast when Redis is away (joins are then refused, live rooms go on).
        self.redis = Redis.from_url(
            url, socket_connect_timeout=1, socket_timeout=2, decode_responses=True
        )
        self.directory = RoomDirectory(self.redis, server.room_keep_seconds)
        listener = Redis.from_url(url, socket_connect_timeout=1, decode_responses=True)
        self.relay = Relay(self.redis, listener, self.node_id)
        self.reachable = False
        self._warned = False  # "unreachable" logged, "reachable again" not yet
        self.draining = False  # stopping: rooms deleted now are released, not ended
        self.load: Callable[[], dict[str, Any]] = lambda: {}
        # Node ids whose lease ran out, among those ``watched()`` returns.
        self.on_nodes_lost: list[Callable[[set[str]], Awaitable[None]]] = []
        self.watched: Callable[[], set[str]] = set
        self._written: dict[str, str] = {}  # room id -> the document last stored
        self._foreign: set[str] = set()  # made here, refused: another node has the id
        self._beat_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        rooms.on_room_deleted.append(self._room_deleted)

    def _unreachable(self) -> Refusal:
        """Redis did not answer: noted (emits stay local), and the refusal a client gets."""
        self.reachable = False
        return Refusal(
            "service_unavailable", "the meeting directory is unreachable; try again in a moment"
        )

    @property
    def lease_seconds(self) -> float:
        return self.settings.server.node_lease_seconds

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        await self.relay.start()
        await self.beat()
        self._beat_task = asyncio.create_task(self._beat_forever())
        with contextlib.suppress(TimeoutError):  # Redis away: the relay keeps trying
            await asyncio.wait_for(self.relay.subscribed.wait(), 2)
        log.info(
            "node %s: %s", self.node_id, "in the cluster" if self.reachable else "Redis unreachable"
        )

    async def stop(self) -> None:
        """Releases this node's rooms (their next joiner takes them over), then its lease."""
        self.draining = True
        if self._beat_task is not None:
            self._beat_task.cancel()
        try:
            for room in list(self.rooms.rooms.values()):
                await self.directory.save(self.node_id, room.durable(), release=True)
            await self.directory.drop_lease(self.node_id)
        except RedisError as exc:
            log.warning("node %s: could not release its rooms (%s)", self.node_id, exc)
        self._written.clear()

    async def close(self) -> None:
        await self.relay.close()
        for task in list(self._tasks):
            task.cancel()
        await self.redis.aclose()
        await self.relay.listener.aclose()

    # -- the directory -----------------------------------------------------------------------
    async def owner_for(self, room_id: str) -> str:
        """The node that runs ``room_id``; an unowned room goes to the least-loaded node."""
        if room_id in self.rooms.rooms:
            return self.node_id
        try:
            owner = await self.directory.owner(room_id)
            nodes = await self.directory.nodes()
            if owner and owner in nodes:
                return owner
            return await self.directory.claim(room_id, self._least_loaded(nodes))
        except RedisError:
            raise self._unreachable() from None

    async def enter(self, room: Room) -> None:
        """A room made on this node (POST /api/rooms) goes into the directory now, or is
        refused ``room_exists`` (and deleted here) when another node has its id."""
        try:
            owner = await self.directory.claim(room.room_id, self.node_id)
            fresh = owner == self.node_id and await self.directory.doc(room.room_id) is None
            if fresh and await self.directory.save(self.node_id, room.durable()):
                return
        except RedisError:
            self.rooms.delete(room.room_id)
            raise self._unreachable() from None
        self._foreign.add(room.room_id)  # deleted here only, not in the directory
        self.rooms.delete(room.room_id)
        raise Refusal("room_exists", f"room {room.room_id!r} already exists")

    async def listing(self) -> list[dict[str, Any]]:
        """Every room of the cluster as ``Room.summary()`` plus its ``node`` (None: released,
        waiting for its participants); this node's own rooms with their live figures."""
        try:
            stored = await self.directory.rooms()
        except RedisError:
            raise self._unreachable() from None
        mine = {r.room_id: {**r.summary(), "node": self.node_id} for r in self.rooms.rooms.values()}
        others = [
            {
                "roomId": doc["roomId"],
                "roomName": doc.get("name"),
                "mode": doc["mode"],
                "participants": doc.get("participants", 0),
                "createdAt": doc.get("createdAt"),
                "node": doc.get("owner"),
            }
            for doc in stored
            if doc["roomId"] not in mine
        ]
        return sorted([*mine.values(), *others], key=lambda r: r.get("createdAt") or 0)

    async def elsewhere(self, room_id: str) -> dict[str, Any] | None:
        """The document of ``room_id`` if a living node other than this one runs it, with
        its ``owner``; None otherwise, and when Redis is unreachable."""
        if room_id in self.rooms.rooms:
            return None
        try:
            owner = await self.directory.owner(room_id)
            if not owner or owner == self.node_id or owner not in await self.directory.nodes():
                return None
            doc = await self.directory.doc(room_id)
        except RedisError:
            self.reachable = False
            return None
        return {**doc, "owner": owner} if doc is not None else None

    async def figures(self) -> dict[str, Any]:
        """The cluster's figures from the living nodes' leases (each at most a heartbeat old)."""
        try:
            nodes = await self.directory.nodes()
        except RedisError:
            raise self._unreachable() from None
        nodes[self.node_id] = self.load()  # this node's own, now
        return {
            "nodes": nodes,
            "rooms": sum(n.get("rooms", 0) for n in nodes.values()),
            "participants": sum(n.get("participants", 0) for n in nodes.values()),
        }

    def _least_loaded(self, nodes: dict[str, dict[str, Any]]) -> str:
        if self.node_id not in nodes:
            return self.node_id
        return min(nodes, key=lambda n: (nodes[n].get("participants", 0), n != self.node_id))

    async def stored(self, room_id: str) -> dict[str, Any] | None:
        """The document of a room this node is to run (after a restart, a takeover)."""
        try:
            return await self.directory.doc(room_id)
        except RedisError:
            raise self._unreachable() from None

    def _room_deleted(self, room: Room) -> None:
        self._written.pop(room.room_id, None)
        if self.draining:
            return  # stop() releases it
        if room.room_id in self._foreign:
            self._foreign.discard(room.room_id)
            return
        self._spawn(self._remove(room.room_id))

    async def _remove(self, room_id: str) -> None:
        try:
            await self.directory.remove(room_id, self.node_id)
        except RedisError:
            log.warning("room %s ended but Redis is unreachable: it expires there", room_id)

    # -- the heartbeat ---------------------------------------------------------------------
    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            await self.beat()

    async def beat(self) -> None:
        """Renew the lease, store what changed, look for dead nodes."""
        try:
            await self.directory.renew_lease(self.node_id, self.load(), self.lease_seconds)
            unchanged = []
            for room in list(self.rooms.rooms.values()):
                doc = json.dumps(room.durable(), sort_keys=True)
                if self._written.get(room.room_id) == doc:
                    unchanged.append(room.room_id)
                    continue
                if await self.directory.save_text(self.node_id, room.room_id, doc):
                    self._written[room.room_id] = doc
                else:  # another node took it over (this one was taken for dead)
                    log.warning("room %s is owned by another node now", room.room_id)
            await self.directory.keep(unchanged)
            living = await self.directory.nodes()
        except RedisError as exc:
            if not self._warned:
                log.warning("node %s: Redis unreachable (%s)", self.node_id, exc)
                self._warned = True
            self.reachable = False
            self._written.clear()  # rewrite everything when it is back
            return
        if self._warned:
            log.info("node %s: Redis reachable again", self.node_id)
            self._warned = False
        self.reachable = True
        lost = {n for n in self.watched() if n != self.node_id and n not in living}
        if lost:
            log.warning("nodes lost (lease expired): %s", ", ".join(sorted(lost)))
            for hook in self.on_nodes_lost:
                await hook(lost)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
