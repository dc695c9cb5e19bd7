"""Two nodes and a real Redis serve one set of rooms (Socket.IO clients, in-process nodes)."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Awaitable, Callable

from tests.cluster.conftest import connect, stop, until
from tests.conftest import Client, RunningServer
from tests.support.redis_server import RedisServer

Node = Callable[..., Awaitable[RunningServer]]


async def get_json(node: RunningServer, path: str) -> dict:
    def get() -> dict:
        with urllib.request.urlopen(node.url + path, timeout=5) as response:
            return json.loads(response.read())

    return await asyncio.to_thread(get)


async def health(node: RunningServer) -> dict:
    return await get_json(node, "/health")


async def test_a_p2p_room_spans_two_nodes(node: Node, made: list[Client]) -> None:
    a, b = await node("a"), await node("b")
    alice = await connect(a, made)
    bob = await connect(b, made)
    first = await alice.join("r", "alice", "Alice")
    assert first["mode"] == "p2p" and first["role"] == "moderator"
    answer = await bob.join("r", "bob", "Bob")
    # Bob's socket is on b, the room on a: the answer and the events come from a.
    assert [p["userId"] for p in answer["participants"]] == ["alice"]
    assert answer["role"] == "participant"
    [joined] = await alice.wait_for("user-joined")
    assert joined["userId"] == "bob"
    [listed] = await bob.wait_for("room-participants")
    assert [p["userId"] for p in listed] == ["alice"]

    # Signaling both ways, chat, emoji and media state, as on one node.
    offer = {"type": "offer", "sdp": "v=0\r\n"}
    assert (
        await bob.call("signal-send", {"userId": "bob", "targetUserId": "alice", "signal": offer})
    )["ok"]
    [got] = await alice.wait_for("signal-receive")
    assert got == {"userId": "bob", "signal": offer}
    answer_signal = {"type": "answer", "sdp": "v=0\r\n"}
    await alice.call(
        "signal-send", {"userId": "alice", "targetUserId": "bob", "signal": answer_signal}
    )
    [back] = await bob.wait_for("signal-receive")
    assert back == {"userId": "alice", "signal": answer_signal}
    spoofed = await bob.call(
        "signal-send", {"userId": "alice", "targetUserId": "alice", "signal": offer}
    )
    assert spoofed["error"] == "spoofed_user_id"
    assert (await bob.call("chat-message", {"message": "hello from b"}))["ok"]
    chat = await alice.wait_for("chat-message")
    assert chat[0]["message"] == "hello from b" and chat[0]["userId"] == "bob"
    await bob.wait_for("chat-message")  # the sender's own copy, as on one node
    await alice.call("emoji-reaction", {"emoji": "👍"})
    [reaction] = await bob.wait_for("emoji-reaction")
    assert reaction["emoji"] == "👍"
    assert (await bob.call("media-state", {"video": True}))["ok"]
    [state] = await alice.wait_for("media-state")
    assert state == {"userId": "bob", "media": {"audio": False, "video": True, "screen": False}}

    # The room lives on a: b holds none, and a knows bob's socket is b's.
    assert a.server.rooms.get("r") is not None and b.server.rooms.get("r") is None
    assert a.server.signaling.connections[bob.sio.get_sid()].node == "b"

    # Bob's network drops; his new socket lands on a and proves itself with his token.
    carol = await connect(b, made)
    refused = await carol.call("join-room", {"roomId": "r", "userId": "bob", "userName": "Not Bob"})
    assert refused["error"] == "user_id_taken"
    again = await connect(a, made)
    rejoined = await again.join("r", "bob", "Bob", rejoinToken=answer["rejoinToken"])
    assert rejoined["role"] == "participant"
    await until(lambda: not bob.sio.connected, what="bob's old socket closed by a")
    left = await alice.wait_for("user-left")
    assert left[-1] == {"userId": "bob"}

    # Leaving: alice (on a) sees bob (now on a too) go; a third on b sees alice go.
    dave = await connect(b, made)
    await dave.join("r", "dave")
    assert (await again.call("leave-room", {}))["ok"]
    await until(lambda: len(alice.received("user-left")) == 2, what="bob left")
    assert (await alice.call("leave-room", {}))["ok"]
    gone = await dave.wait_for("user-left", count=2)
    assert gone == [{"userId": "bob"}, {"userId": "alice"}]
    # The last moderator left: the longest present (dave, on b) becomes one, told by a.
    [role] = await dave.wait_for("role-changed")
    assert role["userId"] == "dave" and role["role"] == "moderator"
    assert (await health(a))["node"] == "a" and (await health(b))["redis"] == "ok"
    await b.server.cluster.beat()  # (the figures of the last heartbeat)
    stats = await get_json(a, "/stats")
    assert stats["node"] == "a" and stats["participants"] == 1  # dave, on a's room
    assert stats["cluster"]["nodes"] == {
        "a": {"participants": 1, "rooms": 1},
        "b": {"participants": 0, "rooms": 0},
    }


async def test_a_room_keeps_its_mode_access_chat_and_moderator_across_a_restart(
    node: Node, made: list[Client], redis: RedisServer
) -> None:
    a = await node("a")
    alice = await connect(a, made)
    first = await alice.join("meet", "alice", "Alice", mode="sfu")
    assert first["mode"] == "sfu"
    await alice.call("chat-message", {"message": "before the restart"})
    bob = await connect(a, made)
    await bob.join("meet", "bob", "Bob")
    await asyncio.sleep(0.1)

    await stop(a)  # SIGTERM: the room is released in the directory, everyone disconnected
    await until(lambda: not alice.sio.connected and not bob.sio.connected, what="disconnects")
    stored = json.loads(redis.cli("HGET", "sfu:room:meet", "doc"))
    assert stored["mode"] == "sfu" and redis.cli("HGET", "sfu:room:meet", "owner") == ""

    again = await node("a2")  # a new process, a new node id
    bob2 = await connect(again, made)
    answer = await bob2.join("meet", "bob", "Bob")  # no mode: the room's own comes back
    assert answer["mode"] == "sfu"
    assert [m["message"] for m in answer["chatHistory"]] == ["before the restart"]
    assert answer["role"] == "participant"  # the moderator role is not the first rejoiner's
    alice2 = await connect(again, made)
    back = await alice2.join("meet", "alice", "Alice", rejoinToken=first["rejoinToken"])
    assert back["role"] == "moderator" and back["mode"] == "sfu"
    assert again.server.rooms.get("meet").router is not None  # an SFU room, with its router


async def test_a_password_room_stays_a_password_room_after_a_restart(
    node: Node, made: list[Client]
) -> None:
    a = await node("a")
    created = await asyncio.to_thread(
        _post, a.url + "/api/rooms", {"roomId": "secret", "mode": "sfu", "password": "hunter22"}
    )
    assert created["access"] == "password"
    await stop(a)
    b = await node("b")
    guest = await connect(b, made)
    refused = await guest.call(
        "join-room", {"roomId": "secret", "userId": "eve", "userName": "Eve"}
    )
    assert refused["error"] == "password_required"
    wrong = await guest.call(
        "join-room", {"roomId": "secret", "userId": "eve", "userName": "Eve", "password": "guess"}
    )
    assert wrong["error"] == "wrong_password"
    ok = await guest.join("secret", "eve", "Eve", password="hunter22")
    assert ok["mode"] == "sfu" and ok["access"] == "password"


async def test_a_room_id_one_node_has_is_refused_by_the_other(
    node: Node, made: list[Client]
) -> None:
    a, b = await node("a"), await node("b")
    alice = await connect(a, made)
    await alice.join("taken", "alice")
    refused = await asyncio.to_thread(_post, b.url + "/api/rooms", {"roomId": "taken"}, 409)
    assert refused["error"] == "room_exists"
    assert b.server.rooms.get("taken") is None
    assert a.server.rooms.get("taken") is not None  # untouched


async def test_without_redis_live_rooms_go_on_and_new_joins_are_refused(
    node: Node, made: list[Client], redis: RedisServer
) -> None:
    a = await node("a")
    alice = await connect(a, made)
    await alice.join("live", "alice")
    redis.stop()
    # A live room of this node takes its joins and events; a new room cannot be placed.
    bob = await connect(a, made)
    await bob.join("live", "bob")
    await alice.wait_for("user-joined")
    newcomer = await connect(a, made)
    refused = await newcomer.call("join-room", {"roomId": "new", "userId": "n", "userName": "N"})
    assert refused["error"] == "service_unavailable"
    assert a.server.rooms.get("new") is None
    await until(lambda: not a.server.cluster.reachable, what="the node to notice")
    said = await health(a)
    assert said["status"] == "degraded" and said["redis"] == "unreachable", said
    redis.start()  # same port, empty: the node writes its rooms back
    await until(lambda: a.server.cluster.reachable, what="Redis back")
    assert (await health(a))["status"] == "ok"
    await until(lambda: redis.cli("HGET", "sfu:room:live", "owner") == "a", what="resync")
    assert (await newcomer.join("new", "n"))["ok"]


def _post(url: str, body: dict, status: int = 201) -> dict:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == status
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        assert exc.code == status, exc.read()
        return json.loads(exc.read())


async def test_sfu_rooms_list_shows_every_rooms_node(node: Node, made: list[Client]) -> None:
    from tests.test_cli import sfu

    admin = {"auth": {"admin_token": "cluster-admin"}}
    a, b = await node("a", **admin), await node("b", **admin)
    alice = await connect(a, made)
    await alice.join("on-a", "alice", mode="sfu")
    bob = await connect(b, made)
    await bob.join("on-b", "bob")
    await until(lambda: a.server.cluster._written.get("on-a"), what="a's room written")
    listed = await asyncio.to_thread(
        sfu, "rooms", "list", "--server", b.url, "--token", "cluster-admin", "--json"
    )
    assert listed.exit_code == 0, listed.output
    rooms = {r["roomId"]: r for r in json.loads(listed.stdout)["rooms"]}
    assert rooms["on-a"]["node"] == "a" and rooms["on-a"]["mode"] == "sfu"
    assert rooms["on-a"]["participants"] == 1
    assert rooms["on-b"]["node"] == "b" and rooms["on-b"]["mode"] == "p2p"
    table = await asyncio.to_thread(
        sfu, "rooms", "list", "--server", b.url, "--token", "cluster-admin"
    )
    row = next(line for line in table.stdout.splitlines() if "on-a" in line)
    assert row.split("│")[-2].strip() == "a", table.stdout


async def test_the_lobby_and_moderation_across_nodes(node: Node, made: list[Client]) -> None:
    a, b = await node("a"), await node("b")
    alice = await connect(a, made)
    await alice.join("locked", "alice", "Alice")
    assert (await alice.call("lock-room", {"locked": True}))["ok"]
    bob = await connect(b, made)
    knock = await bob.call("join-room", {"roomId": "locked", "userId": "bob", "userName": "Bob"})
    assert knock["ok"] and knock["lobby"], knock
    [seen] = await alice.wait_for("lobby-knock")
    assert seen["userName"] == "Bob"
    assert (await alice.call("lobby-admit", {"requestId": knock["requestId"]}))["ok"]
    await bob.wait_for("lobby-admitted")
    seated = await bob.join("locked", "bob", "Bob")
    assert [p["userId"] for p in seated["participants"]] == ["alice"]

    # A knock given up for another room: the moderator's list is told, the new room works.
    carol = await connect(b, made)
    second = await carol.call(
        "join-room", {"roomId": "locked", "userId": "carol", "userName": "Carol"}
    )
    assert second["lobby"]
    await alice.wait_for("lobby-knock", count=2)
    elsewhere = await carol.join("open-room", "carol", "Carol")
    assert elsewhere["participants"] == []
    resolved = await alice.wait_for("lobby-resolved", count=2)
    assert resolved[-1] == {"requestId": second["requestId"], "admitted": False, "by": None}
    again = await carol.call("join-room", {"roomId": "locked", "userId": "c", "userName": "C"})
    assert again["error"] == "already_joined"  # seated in open-room

    # A moderator on a removes Bob, whose socket is on b: he is told, and b forgets him.
    assert (await alice.call("remove-participant", {"userId": "bob", "reason": "test"}))["ok"]
    [removed] = await bob.wait_for("removed")
    assert removed["by"] == "alice"
    await until(lambda: bob.sio.get_sid() not in b.server.cluster_events.bound, what="unbound")
    assert bob.sio.get_sid() not in a.server.signaling.connections


async def test_any_node_answers_a_room_lookup_and_sends_admin_actions_to_its_node(
    node: Node, made: list[Client]
) -> None:
    admin = {"auth": {"admin_token": "cluster-admin"}}
    a, b = await node("a", **admin), await node("b", **admin)
    alice = await connect(a, made)
    await alice.join("on-a", "alice", mode="sfu", roomName="Design review")
    await a.server.cluster.beat()
    public = await get_json(b, "/api/rooms/on-a")
    # The display name comes from the room's durable document in the directory (#18).
    assert public == {
        "roomId": "on-a",
        "roomName": "Design review",
        "mode": "sfu",
        "access": "open",
        "participants": 1,
    }

    def delete(url: str) -> tuple[int, dict]:
        request = urllib.request.Request(
            url, method="DELETE", headers={"Authorization": "Bearer cluster-admin"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    status, body = await asyncio.to_thread(delete, b.url + "/api/rooms/on-a")
    assert status == 421 and body["error"] == "other_node" and "'a'" in body["message"]
    assert a.server.rooms.get("on-a") is not None  # nothing happened to it
    status, body = await asyncio.to_thread(delete, a.url + "/api/rooms/on-a")
    assert status == 200 and body["closed"]
    await alice.wait_for("room-closed")
    for _ in range(100):  # the directory entry goes right after the room
        if await a.server.cluster.directory.owner("on-a") is None:
            break
        await asyncio.sleep(0.02)
    status, body = await asyncio.to_thread(delete, b.url + "/api/rooms/on-a")
    assert status == 404 and body["error"] == "unknown_room"
