"""The guide's signaling protocol with real Socket.IO clients against a real server."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import Client

OFFER = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\n"}
CANDIDATE = {
    "candidate": {
        "candidate": "candidate:1 1 udp 2122260223 10.213.0.1 50000 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }
}


async def settle() -> None:
    """Lets in-flight events arrive before asserting that something did NOT arrive."""
    await asyncio.sleep(0.3)


async def test_three_clients_hold_the_guides_conversation(clients) -> None:
    alice, bob, carol = await clients(), await clients(), await clients()

    ack = await alice.join("standup", "alice", "Alice")
    assert ack["mode"] == "p2p" and ack["participants"] == [] and ack["iceServers"] == []
    assert ack["isCreator"] is True
    assert (await alice.wait_for("room-participants")) == [[]]

    ack = await bob.join("standup", "bob", "Bob")
    assert ack["isCreator"] is False
    [participants] = await bob.wait_for("room-participants")
    assert [(p["userId"], p["userName"]) for p in participants] == [("alice", "Alice")]
    [joined] = await alice.wait_for("user-joined")
    assert joined["userId"] == "bob" and joined["userName"] == "Bob"

    await carol.join("standup", "carol", "Carol")
    [participants] = await carol.wait_for("room-participants")
    assert sorted(p["userId"] for p in participants) == ["alice", "bob"]
    await alice.wait_for("user-joined", 2)
    await bob.wait_for("user-joined")

    # Phase 2-4: offer, answer and candidates cross unchanged, only to their target.
    assert (
        await bob.call("signal-send", {"targetUserId": "alice", "userId": "bob", "signal": OFFER})
    )["ok"]
    [got] = await alice.wait_for("signal-receive")
    assert got == {"userId": "bob", "signal": OFFER}
    await alice.call("signal-send", {"targetUserId": "bob", "userId": "alice", "signal": ANSWER})
    await alice.call("signal-send", {"targetUserId": "bob", "userId": "alice", "signal": CANDIDATE})
    got = await bob.wait_for("signal-receive", 2)
    assert got == [{"userId": "alice", "signal": ANSWER}, {"userId": "alice", "signal": CANDIDATE}]
    await settle()
    assert carol.received("signal-receive") == []

    # Leaving: the others hear user-left; the room lives on until it is empty.
    assert (await carol.call("leave-room"))["ok"]
    assert (await alice.wait_for("user-left")) == [{"userId": "carol"}]
    assert (await bob.wait_for("user-left")) == [{"userId": "carol"}]
    await bob.close()  # a disconnect counts as leaving
    assert (await alice.wait_for("user-left", 2))[1] == {"userId": "bob"}


async def test_empty_room_is_deleted(server, clients) -> None:
    alice = await clients()
    await alice.join("temp", "alice")
    assert server.server.rooms.get("temp") is not None
    await alice.call("leave-room")
    assert server.server.rooms.get("temp") is None
    bob = await clients()
    await bob.join("temp2", "bob")
    await bob.close()
    for _ in range(50):
        if server.server.rooms.get("temp2") is None:
            break
        await asyncio.sleep(0.05)
    assert server.server.rooms.stats()["rooms"] == 0


async def test_spoofed_sender_and_foreign_target_deliver_nothing(clients) -> None:
    alice = await clients()
    bob = await clients()
    mallory = await clients()
    outsider = await clients()
    await alice.join("r1", "alice")
    await bob.join("r1", "bob")
    await mallory.join("r1", "mallory")
    await outsider.join("r2", "outsider")

    spoof = {"targetUserId": "bob", "userId": "alice", "signal": OFFER}
    ack = await mallory.call("signal-send", spoof)
    assert ack == {"ok": False, "error": "spoofed_user_id", "message": ack["message"]}
    ack = await mallory.call(
        "signal-send", {"targetUserId": "outsider", "userId": "mallory", "signal": OFFER}
    )
    assert ack["error"] == "unknown_target"
    ack = await mallory.call(
        "signal-send", {"targetUserId": "mallory", "userId": "mallory", "signal": OFFER}
    )
    assert ack["error"] == "unknown_target"
    ack = await outsider.call(
        "signal-send", {"targetUserId": "bob", "userId": "outsider", "signal": OFFER}
    )
    assert ack["error"] == "unknown_target"
    await settle()
    for victim in (alice, bob, mallory, outsider):
        assert victim.received("signal-receive") == []


async def test_user_id_cannot_be_taken_over(server, clients) -> None:
    alice, impostor = await clients(), await clients()
    await alice.join("r", "alice", "Alice")
    ack = await impostor.call("join-room", {"roomId": "r", "userId": "alice", "userName": "Eve"})
    assert ack["error"] == "user_id_taken"
    room = server.server.rooms.get("r")
    assert room.participants["alice"].user_name == "Alice"
    # The impostor is not in the room: it cannot signal or chat there.
    assert (await impostor.call("chat-message", {"message": "hi"}))["error"] == "not_in_room"
    # The same id in another room is fine.
    await impostor.join("other", "alice", "Eve")


async def test_rejoin_token_lets_a_new_socket_replace_a_stale_one(server, clients) -> None:
    alice, bob = await clients(), await clients()
    first = await alice.join("r", "alice", "Alice")
    await alice.call("chat-message", {"message": "before the drop"})
    await bob.join("r", "bob", "Bob")
    token = first["rejoinToken"]
    assert isinstance(token, str) and len(token) >= 16
    join = {"roomId": "r", "userId": "alice", "userName": "Alice"}
    # Someone else's token, or none, does not take the id over.
    eve = await clients()
    wrong = await eve.call("join-room", {**join, "rejoinToken": "x" * len(token)})
    assert wrong["error"] == "user_id_taken"
    bobs = (await bob.call("leave-room"), await bob.join("r", "bob", "Bob"))[1]["rejoinToken"]
    assert (await eve.call("join-room", {**join, "rejoinToken": bobs}))["error"] == "user_id_taken"
    assert (await eve.call("join-room", join))["error"] == "user_id_taken"
    bob.events.clear()

    # Alice's network dropped; her app's new socket rejoins with her token at once.
    again = await clients()
    ack = await again.call("join-room", {**join, "rejoinToken": token})
    assert ack["ok"], ack
    assert ack["rejoinToken"] != token  # a token is good for one replacement
    assert [p["userId"] for p in ack["participants"]] == ["bob"]
    assert [m["message"] for m in ack["chatHistory"]] == ["before the drop"]
    assert ack["isCreator"] is True  # the room (and who made it) survived the swap
    await bob.wait_for("user-joined")
    # Bob saw the stale Alice leave before the new one joined: his P2P side rebuilds.
    assert [e for e, _ in bob.events if e in ("user-left", "user-joined")] == [
        "user-left",
        "user-joined",
    ]
    room = server.server.rooms.get("r")
    assert room.participants["alice"].sid == again.sio.get_sid()
    # The stale socket is disconnected and can no longer act in the room.
    for _ in range(50):
        if not alice.sio.connected:
            break
        await asyncio.sleep(0.05)
    assert not alice.sio.connected
    # The old token is spent.
    late = await clients()
    assert (await late.call("join-room", {**join, "rejoinToken": token}))["error"] == (
        "user_id_taken"
    )


async def test_second_join_on_one_socket_is_refused(clients) -> None:
    alice = await clients()
    await alice.join("r", "alice")
    ack = await alice.call("join-room", {"roomId": "r2", "userId": "alice2", "userName": "A"})
    assert ack["error"] == "already_joined"


BAD_JOINS = [
    None,
    "standup",
    [1, 2],
    {},
    {"roomId": "r", "userId": "u"},
    {"roomId": 5, "userId": "u", "userName": "U"},
    {"roomId": "r", "userId": ["u"], "userName": "U"},
    {"roomId": "r", "userId": "u", "userName": None},
    {"roomId": "", "userId": "u", "userName": "U"},
    {"roomId": "../etc", "userId": "u", "userName": "U"},
    {"roomId": "r" * 65, "userId": "u", "userName": "U"},
    {"roomId": "r", "userId": "u u", "userName": "U"},
    {"roomId": "r", "userId": "u", "userName": "   "},
    {"roomId": "r", "userId": "u", "userName": "N" * 65},
    {"roomId": "r", "userId": "u", "userName": "U", "mode": "mesh"},
    {"roomId": "r", "userId": "u", "userName": "U", "media": {"audio": "yes"}},
    # The meeting's display name (#18): a string without control characters, 1..100.
    {"roomId": "r", "userId": "u", "userName": "U", "roomName": 5},
    {"roomId": "r", "userId": "u", "userName": "U", "roomName": ["Review"]},
    {"roomId": "r", "userId": "u", "userName": "U", "roomName": "R" * 101},
    {"roomId": "r", "userId": "u", "userName": "U", "roomName": "Weekly\treview"},
    {"roomId": "r", "userId": "u", "userName": "U", "roomName": "\u200bhidden"},
]


@pytest.mark.parametrize("payload", BAD_JOINS)
async def test_malformed_join_is_refused_and_changes_nothing(server, clients, payload) -> None:
    client = await clients()
    ack = await client.call("join-room", payload)
    assert ack["ok"] is False and ack["error"] == "invalid_payload" and ack["message"]
    assert server.server.rooms.stats()["rooms"] == 0


async def test_a_creating_join_names_the_meeting(server, clients) -> None:
    alice, bob = await clients(), await clients()
    ack = await alice.join("review", "alice", "Alice", roomName=" Weekly design review ")
    assert ack["roomName"] == "Weekly design review"
    assert server.server.rooms.get("review").name == "Weekly design review"
    # Only the join that creates the room names it: a later joiner's name is not used...
    ack = await bob.join("review", "bob", "Bob", roomName="Something else")
    assert ack["roomName"] == "Weekly design review"
    # ...but a bad one is refused all the same, and changes nothing.
    carol = await clients()
    ack = await carol.call(
        "join-room", {"roomId": "review", "userId": "carol", "userName": "C", "roomName": "x\n"}
    )
    assert ack["error"] == "invalid_payload" and "roomName" in ack["message"], ack
    assert sorted(server.server.rooms.get("review").participants) == ["alice", "bob"]
    # Unnamed rooms answer null.
    assert (await carol.join("plain", "carol", "Carol"))["roomName"] is None


async def test_events_before_joining_are_refused(clients) -> None:
    client = await clients()
    for event, payload in [
        ("signal-send", {"targetUserId": "x", "userId": "y", "signal": OFFER}),
        ("chat-message", {"message": "hi"}),
        ("emoji-reaction", {"emoji": "👍"}),
        ("media-state", {"audio": True}),
        ("leave-room", {}),
    ]:
        assert (await client.call(event, payload))["error"] == "not_in_room", event


async def test_malformed_events_in_a_room_are_refused(clients) -> None:
    alice, bob = await clients(), await clients()
    await alice.join("r", "alice")
    await bob.join("r", "bob")
    cases = [
        ("signal-send", None),
        ("signal-send", {"targetUserId": "bob", "userId": "alice"}),
        ("signal-send", {"targetUserId": "bob", "userId": "alice", "signal": "offer"}),
        ("signal-send", {"targetUserId": 7, "userId": "alice", "signal": OFFER}),
        ("chat-message", {"message": ""}),
        ("chat-message", {"message": 42}),
        ("chat-message", {"text": "hi"}),
        ("chat-message", {"message": "x" * 2001}),
        ("emoji-reaction", {"emoji": ""}),
        ("emoji-reaction", {"emoji": "x" * 17}),
        ("emoji-reaction", {"emoji": None}),
        ("media-state", {}),
        ("media-state", {"audio": 1}),
        ("media-state", "muted"),
    ]
    for event, payload in cases:
        ack = await alice.call(event, payload)
        assert ack["ok"] is False and ack["error"] == "invalid_payload", (event, payload, ack)
    await settle()
    for name in ("signal-receive", "chat-message", "emoji-reaction", "media-state"):
        assert bob.received(name) == [], name


async def test_oversized_payloads_and_unknown_events(server, clients) -> None:
    alice, bob = await clients(), await clients()
    await alice.join("r", "alice")
    await bob.join("r", "bob")
    huge = {
        "targetUserId": "bob",
        "userId": "alice",
        "signal": {"type": "offer", "sdp": "a" * 70_000},
    }
    assert (await alice.call("signal-send", huge))["error"] == "payload_too_large"
    ack = await alice.call("no-such-event", {"x": 1})
    assert ack["error"] == "unknown_event"
    await settle()
    assert bob.received("signal-receive") == []
    # The server still works for everyone.
    assert (await alice.call("chat-message", {"message": "still here"}))["ok"]


async def test_chat_relayed_with_server_fields_and_bounded_history(make_server) -> None:
    server = await make_server(rooms={"chat_history": 3})
    alice = await Client(server.url).connect()
    bob = await Client(server.url).connect()
    try:
        await alice.join("r", "alice", "Alice")
        await bob.join("r", "bob", "Bob")
        ack = await alice.call("chat-message", {"message": "  hello <b>bob</b>  "})
        assert ack["ok"] and ack["id"] and ack["timestamp"] > 1.7e12
        [msg] = await bob.wait_for("chat-message")
        assert msg == {
            "id": ack["id"],
            "userId": "alice",
            "userName": "Alice",
            "message": "hello <b>bob</b>",
            "timestamp": ack["timestamp"],
        }
        [own] = await alice.wait_for("chat-message")  # the sender sees the server's copy too
        assert own == msg
        for i in range(4):
            await bob.call("chat-message", {"message": f"m{i}"})
        late = await Client(server.url).connect()
        ack = await late.join("r", "late")
        assert [m["message"] for m in ack["chatHistory"]] == ["m1", "m2", "m3"]
        await late.close()
    finally:
        await alice.close()
        await bob.close()


async def test_emoji_and_media_state(clients) -> None:
    alice, bob = await clients(), await clients()
    await alice.join("r", "alice", "Alice", media={"audio": True, "video": True})
    await bob.join("r", "bob", "Bob")
    [participants] = await bob.wait_for("room-participants")
    assert participants[0]["media"] == {"audio": True, "video": True, "screen": False}

    ack = await alice.call("emoji-reaction", {"emoji": "🎉"})
    assert ack["ok"]
    [reaction] = await bob.wait_for("emoji-reaction")
    assert reaction["emoji"] == "🎉" and reaction["userId"] == "alice"
    assert reaction["userName"] == "Alice"

    ack = await alice.call("media-state", {"audio": False})
    assert ack == {"ok": True, "media": {"audio": False, "video": True, "screen": False}}
    [state] = await bob.wait_for("media-state")
    assert state == {"userId": "alice", "media": {"audio": False, "video": True, "screen": False}}
    carol = await clients()
    await carol.join("r", "carol")
    [participants] = await carol.wait_for("room-participants")
    by_id = {p["userId"]: p["media"] for p in participants}
    assert by_id["alice"]["audio"] is False and by_id["alice"]["video"] is True
    await settle()
    assert alice.received("media-state") == []  # not echoed to the sender


async def test_rooms_are_isolated(clients) -> None:
    a1, a2, b1, b2 = [await clients() for _ in range(4)]
    await a1.join("room-a", "u1")
    await a2.join("room-a", "u2")
    await b1.join("room-b", "u1")  # same user ids, other room
    await b2.join("room-b", "u2")
    await a1.call("chat-message", {"message": "for room a"})
    await a1.call("emoji-reaction", {"emoji": "👍"})
    await a1.call("signal-send", {"targetUserId": "u2", "userId": "u1", "signal": OFFER})
    await a2.wait_for("signal-receive")
    await a2.wait_for("chat-message")
    await a1.call("leave-room")
    await a2.wait_for("user-left")
    await settle()
    for client in (b1, b2):
        for event in ("chat-message", "emoji-reaction", "signal-receive", "user-left"):
            assert client.received(event) == [], event


async def test_rate_limits_per_socket(make_server) -> None:
    server = await make_server(
        limits={
            "chat_per_second": 0.01,
            "chat_burst": 3,
            "emoji_per_second": 0.01,
            "emoji_burst": 2,
        }
    )
    alice = await Client(server.url).connect()
    bob = await Client(server.url).connect()
    try:
        await alice.join("r", "alice")
        await bob.join("r", "bob")
        acks = [await alice.call("chat-message", {"message": f"m{i}"}) for i in range(5)]
        assert [a["ok"] for a in acks] == [True, True, True, False, False]
        assert acks[3]["error"] == "rate_limited"
        acks = [await alice.call("emoji-reaction", {"emoji": "👍"}) for _ in range(3)]
        assert [a["ok"] for a in acks] == [True, True, False]
        # Another socket has its own bucket.
        assert (await bob.call("chat-message", {"message": "mine"}))["ok"]
        await settle()
        assert [m["message"] for m in bob.received("chat-message")] == ["m0", "m1", "m2", "mine"]
    finally:
        await alice.close()
        await bob.close()


async def test_room_and_server_caps(make_server) -> None:
    server = await make_server(rooms={"max_participants": 2, "max_rooms": 1})
    made = [await Client(server.url).connect() for _ in range(4)]
    try:
        await made[0].join("r", "a")
        await made[1].join("r", "b")
        assert (await made[2].call("join-room", {"roomId": "r", "userId": "c", "userName": "C"}))[
            "error"
        ] == "room_full"
        assert (await made[3].call("join-room", {"roomId": "r2", "userId": "d", "userName": "D"}))[
            "error"
        ] == "too_many_rooms"
        assert server.server.rooms.stats()["participants"] == 2
    finally:
        for client in made:
            await client.close()


async def test_mode_is_fixed_at_creation(clients) -> None:
    alice, bob = await clients(), await clients()
    ack = await alice.join("meet", "alice", mode="sfu")
    assert ack["mode"] == "sfu"
    ack = await bob.join("meet", "bob", mode="p2p")
    assert ack["mode"] == "sfu"


async def test_raised_hands_queue_in_order_and_leave_with_their_owner(clients, server) -> None:
    alice, bob = await clients(), await clients()
    await alice.join("hands", "alice", "Alice")
    await bob.join("hands", "bob", "Bob")
    first = await bob.call("raise-hand", {"raised": True})
    assert first["ok"] and first["raised"] is True and isinstance(first["at"], int)
    [told] = await alice.wait_for("hand-raised")
    assert told == {"userId": "bob", "raised": True, "at": first["at"]}
    # Raising again keeps the first time (the place in the line) and tells nobody.
    again = await bob.call("raise-hand", {"raised": True})
    assert again == {"ok": True, "raised": True, "at": first["at"]}
    assert (await alice.call("raise-hand", {"raised": True}))["at"] >= first["at"]
    # A late joiner sees both hands with their times.
    carol = await clients()
    await carol.join("hands", "carol", "Carol")
    [people] = await carol.wait_for("room-participants")
    hands = {p["userId"]: p["handRaisedAt"] for p in people}
    assert hands["bob"] == first["at"] and hands["alice"] >= first["at"]
    # Lowered: told once; bad payloads change nothing.
    assert (await bob.call("raise-hand", {"raised": False})) == {
        "ok": True,
        "raised": False,
        "at": None,
    }
    [_, lowered] = await alice.wait_for("hand-raised", count=2)
    assert lowered == {"userId": "bob", "raised": False, "at": None}
    for bad in ({"raised": "yes"}, {}, [True], "up", None):
        assert (await bob.call("raise-hand", bad))["error"] == "invalid_payload", bad
    await settle()
    assert len(alice.received("hand-raised")) == 2
    # A spoofed userId is ignored: only the sender's own hand moves.
    spoof = await bob.call("raise-hand", {"raised": False, "userId": "alice"})
    assert spoof == {"ok": True, "raised": False, "at": None}
    await settle()
    assert len(alice.received("hand-raised")) == 2  # Bob's was already down; Alice's stays up
    assert server.server.rooms.get("hands").participants["alice"].hand_raised_at is not None
    # The hand goes with its owner.
    await alice.call("leave-room", {})
    await alice.join("hands", "alice", "Alice")
    people = (await alice.wait_for("room-participants", count=2))[-1]
    assert {p["userId"] for p in people} == {"bob", "carol"}
    assert all(p["handRaisedAt"] is None for p in people)
    assert server.server.rooms.get("hands").participants["alice"].hand_raised_at is None


async def test_a_local_recording_is_announced_and_kept_for_late_joiners(clients) -> None:
    alice, bob = await clients(), await clients()
    await alice.join("local", "alice", "Alice")
    await bob.join("local", "bob", "Bob")
    assert await bob.call("local-recording", {"recording": True}) == {"ok": True, "recording": True}
    [told] = await alice.wait_for("local-recording")
    assert told == {"userId": "bob", "recording": True}
    assert (await bob.call("local-recording", {"recording": True}))["ok"]  # said already: quiet
    carol = await clients()
    await carol.join("local", "carol", "Carol")
    [people] = await carol.wait_for("room-participants")
    assert {p["userId"]: p["localRecording"] for p in people} == {"alice": False, "bob": True}
    for bad in ({"recording": 1}, {}, None, "yes"):
        assert (await bob.call("local-recording", bad))["error"] == "invalid_payload", bad
    await bob.call("local-recording", {"recording": False})
    [_, stopped] = await alice.wait_for("local-recording", count=2)
    assert stopped == {"userId": "bob", "recording": False}
    stranger = await clients()
    refused = await stranger.call("local-recording", {"recording": True})
    assert refused["error"] == "not_in_room"
