"""REST routes against a real server: health, stats, metrics, rooms, admin settings."""

from __future__ import annotations

import re

import aiohttp
import pytest

from sfu.rooms import RoomRegistry
from sfu.settings import load_settings
from tests.conftest import Client

TOKEN = "s3cret-admin-token"


async def request(method: str, url: str, **kwargs) -> tuple[int, object]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, url, **kwargs) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()


def admin(token: str = TOKEN) -> dict[str, dict[str, str]]:
    return {"headers": {"Authorization": f"Bearer {token}"}}


async def test_health_stats_metrics(server, clients) -> None:
    status, body = await request("GET", server.url + "/health")
    assert status == 200 and body["status"] == "ok" and body["version"]
    assert body["uptimeSeconds"] >= 0
    a, b, c = await clients(), await clients(), await clients()
    await a.join("p", "a")
    await b.join("p", "b")
    await c.join("s", "c", mode="sfu")
    status, body = await request("GET", server.url + "/stats")
    assert body["rooms"] == 2 and body["participants"] == 3
    assert body["byMode"] == {
        "p2p": {"rooms": 1, "participants": 2},
        "sfu": {"rooms": 1, "participants": 1},
    }
    status, text = await request("GET", server.url + "/metrics")
    assert status == 200
    assert 'sfu_participants{mode="p2p"} 2.0' in text
    assert 'sfu_signaling_events_total{event="join-room",result="ok"} 3.0' in text


async def test_create_room_then_join_keeps_its_mode(server) -> None:
    status, body = await request("POST", server.url + "/api/rooms", json={"mode": "sfu"})
    assert status == 201 and body["mode"] == "sfu"
    # Readable: three groups of four lower-case letters, none of i, l, o (#18).
    assert re.fullmatch(r"[a-hj-km-np-z]{4}-[a-hj-km-np-z]{4}-[a-hj-km-np-z]{4}", body["roomId"])
    room_id = body["roomId"]
    status, info = await request("GET", f"{server.url}/api/rooms/{room_id}")
    assert info == {
        "roomId": room_id,
        "roomName": None,
        "mode": "sfu",
        "participants": 0,
        "access": "open",
    }
    client = await Client(server.url).connect()
    try:
        ack = await client.join(room_id, "u", mode="p2p")
        assert ack["mode"] == "sfu"
    finally:
        await client.close()
    status, body = await request(
        "POST", server.url + "/api/rooms", json={"roomId": "named-room", "mode": "p2p"}
    )
    assert status == 201 and body == {
        "roomId": "named-room",
        "roomName": None,
        "mode": "p2p",
        "access": "open",
    }
    status, body = await request(
        "POST", server.url + "/api/rooms", json={"roomId": "named-room", "mode": "sfu"}
    )
    assert status == 409 and body["error"] == "room_exists"


@pytest.mark.parametrize(
    "body",
    [{"mode": "mesh"}, {"roomId": "../x", "mode": "p2p"}, {"roomId": 3}, [], "x"],
)
async def test_create_room_refuses_bad_bodies(server, body) -> None:
    status, answer = await request("POST", server.url + "/api/rooms", json=body)
    assert status == 400 and answer["error"] == "invalid_payload"
    status, answer = await request(
        "POST",
        server.url + "/api/rooms",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert status == 400
    assert server.server.rooms.stats()["rooms"] == 0


async def test_a_room_made_with_a_display_name_keeps_it(make_server) -> None:
    server = await make_server(auth={"admin_token": TOKEN})
    url = server.url + "/api/rooms"
    body = {"roomId": "review", "mode": "sfu", "name": "  Weekly design review  "}
    status, made = await request("POST", url, json=body)
    assert status == 201 and made["roomName"] == "Weekly design review", made  # trimmed
    status, info = await request("GET", url + "/review")
    assert info["roomName"] == "Weekly design review"
    status, listed = await request("GET", url, **admin())
    assert [r["roomName"] for r in listed["rooms"]] == ["Weekly design review"]
    # The name is in the room's durable document: another node (or a restart) keeps it.
    doc = server.server.rooms.get("review").durable()
    assert doc["name"] == "Weekly design review"
    assert RoomRegistry(load_settings()).restore(doc).name == "Weekly design review"
    # An empty field is no name.
    status, made = await request("POST", url, json={"mode": "p2p", "name": ""})
    assert status == 201 and made["roomName"] is None
    # Hostile names change nothing: refused with invalid_payload, naming the field.
    for bad in ["a" * 101, "Weekly\nreview", "x\u0000", "\u202eevil", 7, ["x"], {"a": 1}]:
        status, answer = await request(
            "POST", url, json={"roomId": "bad", "mode": "p2p", "name": bad}
        )
        assert status == 400 and answer["error"] == "invalid_payload", (bad, answer)
        assert "name" in answer["message"], answer
        assert server.server.rooms.get("bad") is None


async def test_create_room_is_rate_limited(make_server) -> None:
    server = await make_server(rooms={"create_per_minute": 1})
    statuses = [
        (await request("POST", server.url + "/api/rooms", json={"mode": "p2p"}))[0]
        for _ in range(7)
    ]
    assert statuses[:5] == [201] * 5  # a burst of five, then one a minute
    assert statuses[5:] == [429, 429]


async def test_created_room_expires_without_joiners(make_server) -> None:
    server = await make_server(rooms={"empty_room_ttl_seconds": 0})
    status, body = await request("POST", server.url + "/api/rooms", json={"mode": "p2p"})
    assert server.server.rooms.sweep_expired() == [body["roomId"]]
    status, _ = await request("GET", f"{server.url}/api/rooms/{body['roomId']}")
    assert status == 404


async def test_unknown_room_and_spa_fallback(server) -> None:
    status, body = await request("GET", server.url + "/api/rooms/nope")
    assert status == 404 and body["error"] == "unknown_room"
    status, _ = await request("GET", server.url + "/api/nothing-here")
    assert status == 404
    status, page = await request("GET", server.url + "/room/abc")
    assert status == 200 and "<html" in page.lower()


async def test_admin_routes_need_the_token(make_server) -> None:
    server = await make_server(auth={"admin_token": TOKEN})
    for method, path in [
        ("GET", "/api/settings"),
        ("PATCH", "/api/settings"),
        ("GET", "/api/rooms"),
        ("DELETE", "/api/rooms/x"),
    ]:
        status, body = await request(method, server.url + path)
        assert status == 401 and body["error"] == "unauthorized", path
        status, _ = await request(method, server.url + path, **admin("wrong"))
        assert status == 401, path
    status, body = await request("GET", server.url + "/api/settings", **admin())
    assert status == 200 and body["settings"]["auth.admin_token"] == "********"
    assert body["settings"]["server.port"] == server.port


async def test_admin_routes_closed_without_a_configured_token(server) -> None:
    status, _ = await request("GET", server.url + "/api/settings", **admin(""))
    assert status == 401


async def test_patch_settings_applies_live_and_validates(make_server) -> None:
    server = await make_server(auth={"admin_token": TOKEN}, rooms={"max_participants": 5})
    url = server.url + "/api/settings"
    status, body = await request(
        "PATCH",
        url,
        json={"changes": {"rooms.max_participants": 1, "server.port": 6001}},
        **admin(),
    )
    assert status == 200
    assert body["applied"] == ["rooms.max_participants"]
    assert body["restart_required"] == ["server.port"]
    # The new cap is live: a second joiner is refused.
    a, b = await Client(server.url).connect(), await Client(server.url).connect()
    try:
        await a.join("r", "a")
        ack = await b.call("join-room", {"roomId": "r", "userId": "b", "userName": "B"})
        assert ack["error"] == "room_full"
    finally:
        await a.close()
        await b.close()
    for changes, word in [
        ({"rooms.max_participants": 0}, "rooms.max_participants"),
        ({"rooms.nope": 1}, "rooms.nope"),
        ({"nope": 1}, "nope"),
        ({"rooms.max_participants": 3, "sfu.video_codec": "AV1"}, "sfu.video_codec"),
    ]:
        status, body = await request("PATCH", url, json={"changes": changes}, **admin())
        assert status == 400 and body["error"] == "invalid_setting" and word in body["message"]
    # A refused change applied nothing, not even its valid half.
    assert server.settings.rooms.max_participants == 1
    status, stats = await request("GET", server.url + "/stats")
    assert stats["settingsChanges"][-1]["keys"] == ["rooms.max_participants", "server.port"]


async def test_admin_lists_shows_and_closes_rooms(make_server) -> None:
    server = await make_server(auth={"admin_token": TOKEN})
    a, b = await Client(server.url).connect(), await Client(server.url).connect()
    try:
        await a.join("r", "a", "Ann")
        await b.join("r", "b", "Ben")
        status, body = await request("GET", server.url + "/api/rooms", **admin())
        assert [(r["roomId"], r["participants"]) for r in body["rooms"]] == [("r", 2)]
        status, body = await request("GET", server.url + "/api/rooms/r", **admin())
        assert sorted(p["userName"] for p in body["participantList"]) == ["Ann", "Ben"]
        status, body = await request("DELETE", server.url + "/api/rooms/r", **admin())
        assert status == 200 and body["closed"] is True
        [closed] = await a.wait_for("room-closed")
        assert closed["roomId"] == "r"
        assert server.server.rooms.get("r") is None
        assert (await a.call("chat-message", {"message": "x"}))["error"] == "not_in_room"
    finally:
        await a.close()
        await b.close()
