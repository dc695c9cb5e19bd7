"""The room directory on Redis: which node owns each room, and what each room keeps.

A room is one hash ``sfu:room:<id>`` with ``owner`` (a node id, empty when released) and
``doc`` (:meth:`sfu.rooms.Room.durable` as JSON). A node's lease is the key ``sfu:node:<id>``
(its load as JSON) that expires unless renewed; ``sfu:nodes`` lists the nodes seen. An owner
is taken for dead when its lease is gone, and its rooms then go to the next claimant. Every
room key expires ``room_keep_seconds`` after its owner last renewed it, so the rooms of a node
that died, or that stopped and whose participants never came back, leave the directory.
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

ROOM = "sfu:room:"
NODE = "sfu:node:"
NODES = "sfu:nodes"

# The room's owner if that node is alive, else the claimant becomes it (atomically).
_CLAIM = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= '' and owner ~= ARGV[1] and redis.call('EXISTS', ARGV[3] .. owner) == 1 then
  return owner
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return ARGV[1]
"""
# Writes the document of a room this node owns (or that nobody owns); refuses another's.
_SAVE = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= '' and owner ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[3], 'doc', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""
_REMOVE = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= '' and owner ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


class RoomDirectory:
    """Rooms and node leases in one Redis database (a client with ``decode_responses``)."""

    def __init__(self, redis: Redis, keep_seconds: float) -> None:
        self.redis = redis
        self.keep_seconds = keep_seconds
        self._claim = redis.register_script(_CLAIM)
        self._save = redis.register_script(_SAVE)
        self._remove = redis.register_script(_REMOVE)

    # -- rooms ---------------------------------------------------------------------------
    async def claim(self, room_id: str, node_id: str) -> str:
        """The node that owns ``room_id``: its living owner, else ``node_id`` from now on."""
        owner = await self._claim(keys=[ROOM + room_id], args=[node_id, self._keep(), NODE])
        return str(owner)

    async def owner(self, room_id: str) -> str | None:
        owner = await self.redis.hget(ROOM + room_id, "owner")
        return str(owner) if owner else None

    async def doc(self, room_id: str) -> dict[str, Any] | None:
        raw = await self.redis.hget(ROOM + room_id, "doc")
        return json.loads(raw) if raw else None

    async def save(self, node_id: str, doc: dict[str, Any], release: bool = False) -> bool:
        """Stores an owned room's document; ``release`` gives the room up (its node stops)."""
        return await self.save_text(node_id, doc["roomId"], json.dumps(doc), release)

    async def save_text(self, node_id: str, room_id: str, doc: str, release: bool = False) -> bool:
        """:meth:`save` with the document already serialised (the heartbeat compares it)."""
        written = await self._save(
            keys=[ROOM + room_id], args=[node_id, doc, "" if release else node_id, self._keep()]
        )
        return bool(written)

    async def keep(self, room_ids: list[str]) -> None:
        """Renews the keep-alive of rooms this node owns whose document did not change."""
        if not room_ids:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for room_id in room_ids:
                pipe.expire(ROOM + room_id, self._keep())
            await pipe.execute()

    async def remove(self, room_id: str, node_id: str) -> None:
        """The room ended (its last participant left): gone, unless another node owns it."""
        await self._remove(keys=[ROOM + room_id], args=[node_id])

    async def rooms(self) -> list[dict[str, Any]]:
        """Every room in the directory: ``{roomId, owner, mode, ...}`` (for listings)."""
        found = []
        async for key in self.redis.scan_iter(match=ROOM + "*", count=500):
            owner, raw = await self.redis.hmget(key, ["owner", "doc"])
            if raw:
                doc = json.loads(raw)
                found.append({**doc, "owner": owner or None})
        return found

    def _keep(self) -> int:
        return max(1, round(self.keep_seconds))

    # -- nodes ---------------------------------------------------------------------------
    async def renew_lease(self, node_id: str, load: dict[str, Any], lease_seconds: float) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(NODE + node_id, json.dumps(load), px=max(1, int(lease_seconds * 1000)))
            pipe.sadd(NODES, node_id)
            await pipe.execute()

    async def drop_lease(self, node_id: str) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(NODE + node_id)
            pipe.srem(NODES, node_id)
            await pipe.execute()

    async def nodes(self) -> dict[str, dict[str, Any]]:
        """The living nodes and their last reported load; forgets the dead ones."""
        ids = sorted(str(m) for m in await self.redis.smembers(NODES))
        if not ids:
            return {}
        loads = await self.redis.mget([NODE + i for i in ids])
        dead = [i for i, load in zip(ids, loads, strict=True) if load is None]
        if dead:
            await self.redis.srem(NODES, *dead)
        return {i: json.loads(load) for i, load in zip(ids, loads, strict=True) if load}
