"""Node-to-node messages over Redis pub/sub: a participant's events carried to its room's node.

Each node listens on ``sfu:relay:<node id>``. The node a participant's socket is on (its
*edge*) sends each of its events to the room's owner as an ``ask`` and waits for the
``answer``, which it gives the client as the acknowledgement; it says ``gone`` when the socket
disconnects. The owner says ``departed`` when it took the participant out itself (removed,
replaced, the meeting ended). Everything the owner sends the client (events, room broadcasts,
a disconnect) travels through python-socketio's AsyncRedisManager, not through here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from sfu.refusal import Refusal

log = logging.getLogger("sfu.cluster.relay")

CHANNEL = "sfu:relay:"
ASK_TIMEOUT_SECONDS = 5.0

# (from node, sid, client address, event, data) -> the acknowledgement
AskHandler = Callable[[str, str, str, str, Any], Awaitable[dict[str, Any]]]
# (from node, sid)
SidHandler = Callable[[str, str], Awaitable[None]]


class Relay:
    """This node's end of the relay."""

    def __init__(self, redis: Redis, listener: Redis, node_id: str) -> None:
        self.redis = redis
        self.listener = listener  # its own connection: a subscribed one serves nothing else
        self.node_id = node_id
        self.on_ask: AskHandler | None = None
        self.on_gone: SidHandler | None = None
        self.on_departed: SidHandler | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._handling: set[asyncio.Task[None]] = set()
        self.subscribed = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for waiter in self._waiting.values():
            waiter.cancel()

    async def ask(
        self, node_id: str, sid: str, address: str, event: str, data: Any
    ) -> dict[str, Any]:
        """Hands a client event to ``node_id`` and returns its acknowledgement."""
        request = secrets.token_hex(8)
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[request] = waiter
        message = {
            "kind": "ask",
            "id": request,
            "from": self.node_id,
            "sid": sid,
            "address": address,
            "event": event,
            "data": data,
        }
        try:
            heard = await self.redis.publish(CHANNEL + node_id, json.dumps(message))
            if not heard:
                raise Refusal("service_unavailable", "the meeting's server is not answering")
            return await asyncio.wait_for(waiter, ASK_TIMEOUT_SECONDS)
        except TimeoutError:
            raise Refusal(
                "service_unavailable", "the meeting's server did not answer in time"
            ) from None
        finally:
            self._waiting.pop(request, None)

    async def tell(self, node_id: str, kind: str, sid: str) -> None:
        """``gone`` (edge to owner) or ``departed`` (owner to edge); lost if nobody listens."""
        message = {"kind": kind, "from": self.node_id, "sid": sid}
        try:
            await self.redis.publish(CHANNEL + node_id, json.dumps(message))
        except Exception:  # Redis away: the lease checks clean up after it
            log.warning("could not tell %s that %s is %s", node_id, sid, kind)

    async def _listen_forever(self) -> None:
        delay = 0.5
        while True:
            try:
                async with self.listener.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL + self.node_id)
                    self.subscribed.set()
                    delay = 0.5
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._dispatch(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed.clear()
                log.warning("relay: Redis unreachable (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _dispatch(self, raw: str) -> None:
        try:
            message = json.loads(raw)
            kind = message["kind"]
        except (ValueError, KeyError, TypeError):
            log.warning("relay: unreadable message dropped")
            return
        if kind == "answer":
            waiter = self._waiting.get(message.get("id", ""))
            if waiter is not None and not waiter.done():
                waiter.set_result(message.get("answer") or {})
            return
        task = asyncio.create_task(self._handle(kind, message))
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)

    async def _handle(self, kind: str, message: dict[str, Any]) -> None:
        try:
            origin, sid = str(message["from"]), str(message["sid"])
            if kind == "ask" and self.on_ask is not None:
                answer = await self.on_ask(
                    origin, sid, str(message["address"]), str(message["event"]), message["data"]
                )
                reply = {"kind": "answer", "id": message["id"], "answer": answer}
                await self.redis.publish(CHANNEL + origin, json.dumps(reply))
            elif kind == "gone" and self.on_gone is not None:
                await self.on_gone(origin, sid)
            elif kind == "departed" and self.on_departed is not None:
                await self.on_departed(origin, sid)
        except Exception:
            log.exception("relay: handling a %s message failed", kind)
