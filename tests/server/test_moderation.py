"""Roles, moderation, the lobby and the admin routes (#13), with real Socket.IO clients."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp

from tests.conftest import Client
from tests.server.test_recording_events import recording_settings
from tests.support.checks import assert_refusal

ADMIN = "admin-token-for-tests-0123456789"


async def settle() -> None:
    await asyncio.sleep(0.3)


async def test_every_moderation_event_needs_the_role(server, clients) -> None:
    alice, bob = await clients(), await clients()
    await alice.join("r", "alice", "Alice")
    await bob.join("r", "bob", "Bob")
    for event, payload in (
        ("set-role", {"userId": "bob", "role": "moderator"}),
        ("mute-participant", {"userId": "alice", "kind": "audio"}),
        ("stop-screen-share", {"userId": "alice"}),
        ("remove-participant", {"userId": "alice"}),
        ("lock-room", {"locked": True}),
        ("end-meeting", {}),
        ("lobby-admit", {"requestId": "x"}),
        ("lobby-deny", {"requestId": "x"}),
    ):
        ack = await bob.call(event, payload)
        assert ack == {"ok": False, "error": "forbidden", "message": "needs the moderate grant"}
    for event, payload in (
        ("mute-participant", {"userId": "nobody", "kind": "audio"}),
        ("remove-participant", {"userId": "nobody"}),
        ("set-role", {"userId": "nobody", "role": "moderator"}),
    ):
        assert_refusal(await alice.call(event, payload), allowed={"unknown_participant"})
    assert_refusal(await alice.call("lobby-admit", {"requestId": "x"}), allowed={"unknown_request"})
    assert_refusal(await alice.call("remove-participant", {"userId": "alice"}))
    assert_refusal(
        await alice.call("set-role", {"userId": "alice", "role": "participant"}),
        allowed={"forbidden"},  # the last moderator
    )
    await settle()
    assert alice.received("moderation") == [] and bob.received("moderation") == []
    room = server.server.rooms.get("r")
    assert [p.role for p in room.participants.values()] == ["moderator", "participant"]
    assert not room.locked


async def test_mute_screen_and_roles(server, clients, caplog) -> None:
    caplog.set_level(logging.INFO, logger="sfu.server.moderation")
    alice, bob, carol = await clients(), await clients(), await clients()
    await alice.join("r", "alice", "Alice")
    await bob.join("r", "bob", "Bob")
    await carol.join("r", "carol", "Carol")
    assert (await alice.call("mute-participant", {"userId": "bob", "kind": "audio"}))["ok"]
    [asked] = await bob.wait_for("mute-requested")
    assert asked == {"kind": "audio", "by": "alice", "byName": "Alice"}
    [told] = await carol.wait_for("moderation")
    assert told == {
        "action": "mute",
        "by": "alice",
        "byName": "Alice",
        "target": "bob",
        "targetName": "Bob",
        "detail": "audio",
    }
    assert (await alice.call("stop-screen-share", {"userId": "carol"}))["ok"]
    assert (await carol.wait_for("screen-share-stop-requested")) == [
        {"by": "alice", "byName": "Alice"}
    ]
    ack = await alice.call("set-role", {"userId": "bob", "role": "moderator"})
    assert ack == {"ok": True, "role": "moderator"}
    [changed] = await carol.wait_for("role-changed")
    assert changed["userId"] == "bob" and changed["role"] == "moderator"
    assert changed["by"] == "alice" and changed["grants"]["moderate"] is True
    # Bob may now moderate, even Alice.
    assert (await bob.call("mute-participant", {"userId": "alice", "kind": "video"}))["ok"]
    await settle()
    lines = [r.getMessage() for r in caplog.records if r.name == "sfu.server.moderation"]
    assert lines == [
        "moderation in r: alice (Alice) mute bob (Bob) [audio]",
        "moderation in r: alice (Alice) stop-screen-share carol (Carol)",
        "moderation in r: alice (Alice) set-role bob (Bob) [moderator]",
        "moderation in r: bob (Bob) mute alice (Alice) [video]",
    ]


async def test_handover_to_the_longest_present(server, clients) -> None:
    alice, bob, carol = await clients(), await clients(), await clients()
    await alice.join("r", "alice")
    await bob.join("r", "bob")
    await carol.join("r", "carol")
    await alice.close()
    [changed] = await carol.wait_for("role-changed")
    assert changed["userId"] == "bob" and changed["role"] == "moderator" and changed["by"] is None
    # Alice's user id taken by a newcomer is not a moderator.
    newcomer = await clients()
    ack = await newcomer.join("r", "alice")
    assert ack["role"] == "participant" and ack["isCreator"] is False
    await bob.call("leave-room")
    changed = (await carol.wait_for("role-changed", 2))[1]
    assert changed["userId"] == "carol" and changed["by"] is None
    assert (await carol.call("lock-room", {"locked": True}))["ok"]


async def test_end_meeting(server, clients) -> None:
    alice, bob = await clients(), await clients()
    await alice.join("r", "alice", "Alice")
    await bob.join("r", "bob", "Bob")
    assert (await alice.call("end-meeting", {}))["ok"]
    [closed] = await bob.wait_for("room-closed")
    assert closed == {"roomId": "r", "reason": "ended", "by": "alice", "byName": "Alice"}
    assert server.server.rooms.get("r") is None
    await settle()
    assert bob.received("role-changed") == []  # no handover while the meeting ends


async def test_lobby_admit_deny_and_timeout(make_server) -> None:
    running = await make_server(rooms={"lobby_timeout_seconds": 5})
    made: list[Client] = []

    async def client() -> Client:
        made.append(await Client(running.url).connect())
        return made[-1]

    try:
        alice, bob, carol, dan = await client(), await client(), await client(), await client()
        await alice.join("r", "alice", "Alice")
        assert (await alice.call("lock-room", {"locked": True}))["ok"]
        [locked] = await alice.wait_for("room-locked")
        assert locked == {"locked": True, "by": "alice", "byName": "Alice"}

        knock = await bob.join("r", "bob", "Bob")
        assert knock["lobby"] is True and knock["requestId"]
        assert "participants" not in knock and bob.received("room-participants") == []
        [heard] = await alice.wait_for("lobby-knock")
        assert heard == {"requestId": knock["requestId"], "userName": "Bob"}
        assert (await alice.call("lobby-admit", {"requestId": knock["requestId"]}))["ok"]
        assert (await bob.wait_for("lobby-admitted")) == [{"requestId": knock["requestId"]}]
        joined = await bob.join("r", "bob", "Bob")
        assert joined["roomId"] == "r" and joined["locked"] is True
        assert joined["role"] == "participant"

        knock = await carol.join("r", "carol", "Carol")
        await alice.wait_for("lobby-knock", 2)
        ack = await alice.call("lobby-deny", {"requestId": knock["requestId"], "reason": "full"})
        assert ack["ok"]
        [denied] = await carol.wait_for("lobby-denied")
        assert denied["reason"] == "denied" and "Alice" in denied["message"]
        assert "full" in denied["message"]
        assert (await carol.call("join-room", {"roomId": "r", "userId": "c", "userName": "C"}))[
            "lobby"
        ]  # a new knock, not a way in

        knock = await dan.join("r", "dan", "Dan")
        [denied] = await dan.wait_for("lobby-denied", timeout=10)
        assert denied["reason"] == "timeout" and denied["message"]
        resolved = await alice.wait_for("lobby-resolved", 4)
        assert resolved[-1] == {"requestId": knock["requestId"], "admitted": False, "by": None}
        room = running.server.rooms.get("r")
        assert sorted(room.participants) == ["alice", "bob"]
    finally:
        for c in made:
            await c.close()


async def test_unlock_admits_and_a_closed_room_tells_the_lobby(server, clients) -> None:
    alice, bob, carol = await clients(), await clients(), await clients()
    await alice.join("r", "alice")
    await alice.call("lock-room", {"locked": True})
    knock = await bob.join("r", "bob")
    assert (await alice.call("lock-room", {"locked": False}))["ok"]
    assert (await bob.wait_for("lobby-admitted")) == [{"requestId": knock["requestId"]}]
    await alice.call("lock-room", {"locked": True})
    await carol.join("r", "carol")
    await alice.call("end-meeting", {})
    [denied] = await carol.wait_for("lobby-denied")
    assert denied["reason"] == "room_closed"


async def test_handover_lets_the_new_moderator_stop_a_recording(
    make_server, tmp_path: Path
) -> None:
    running = await make_server(recording=recording_settings(tmp_path / "rec"))
    made = [await Client(running.url).connect() for _ in range(3)]
    alice, bob, carol = made
    try:
        await alice.join("s", "alice", "Alice", mode="sfu")
        await bob.join("s", "bob", "Bob")
        await carol.join("s", "carol", "Carol")
        assert (await alice.call("recording-start", {}))["ok"]
        assert_refusal(await bob.call("recording-stop", {}), allowed={"forbidden"})
        await alice.close()
        await bob.wait_for("role-changed")
        assert_refusal(await carol.call("recording-stop", {}), allowed={"forbidden"})
        ack = await bob.call("recording-stop", {}, timeout=30)
        assert ack["ok"], ack
        assert running.server.recordings.active == {}
    finally:
        for c in made:
            await c.close()


async def test_admin_routes(make_server) -> None:
    running = await make_server(auth={"admin_token": ADMIN})
    alice, bob = await Client(running.url).connect(), await Client(running.url).connect()
    headers = {"Authorization": f"Bearer {ADMIN}"}
    try:
        await alice.join("r", "alice", "Alice")
        await bob.join("r", "bob", "Bob")
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(f"{running.url}/api/rooms/r/participants") as r:
                body = await r.json()
            assert [(p["userId"], p["role"]) for p in body["participants"]] == [
                ("alice", "moderator"),
                ("bob", "participant"),
            ]
            async with http.post(f"{running.url}/api/rooms/r/lock", json={"locked": True}) as r:
                assert r.status == 200 and (await r.json())["locked"] is True
            async with http.delete(
                f"{running.url}/api/rooms/r/participants/bob", json={"reason": "bye"}
            ) as r:
                assert r.status == 200 and (await r.json())["removed"] is True
            async with http.delete(f"{running.url}/api/rooms/r/participants/bob") as r:
                assert r.status == 404 and (await r.json())["error"] == "unknown_participant"
        [removed] = await bob.wait_for("removed")
        assert removed["by"] is None and removed["reason"] == "bye"
        assert (await alice.wait_for("room-locked"))[0]["by"] is None
        async with aiohttp.ClientSession() as http:  # without the admin token
            async with http.get(f"{running.url}/api/rooms/r/participants") as r:
                assert r.status == 401
    finally:
        await alice.close()
        await bob.close()


async def test_rest_creates_a_password_room(make_server) -> None:
    running = await make_server()
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{running.url}/api/rooms",
            json={"roomId": "pw", "password": "pass", "maxParticipants": 3},
        ) as r:
            assert r.status == 201
            assert await r.json() == {
                "roomId": "pw",
                "roomName": None,
                "mode": "p2p",
                "access": "password",
                "maxParticipants": 3,
            }
        async with http.get(f"{running.url}/api/rooms/pw") as r:
            assert await r.json() == {
                "roomId": "pw",
                "roomName": None,
                "mode": "p2p",
                "access": "password",
            }
    client = await Client(running.url).connect()
    try:
        ack = await client.call("join-room", {"roomId": "pw", "userId": "a", "userName": "A"})
        assert ack["error"] == "password_required"
        assert (await client.join("pw", "a", password="pass"))["role"] == "moderator"
    finally:
        await client.close()
