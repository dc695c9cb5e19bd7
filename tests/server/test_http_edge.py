"""Hostile HTTP input against a real server (issue 12).

Every refusal is a documented ``{"error": CODE, "message": ...}`` answer, never a 500; no
refusal tells an outsider whether a room or a recording exists; cross-site requests, DNS
rebinding and symlinks planted in the recordings directory get nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sfu.recording.store import new_id, valid_id, write_sidecar
from tests.conftest import Client, RunningServer

MakeServer = Callable[..., Awaitable[RunningServer]]
TOKEN = "hostile-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}
PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
DOCUMENTED = set(re.findall(r"^\| `([a-z_]+)` \|", PROTOCOL.read_text(), re.MULTILINE))
ID_SHAPE = re.compile(r"^(?P<room>.+)-(?P<time>\d{8}T\d{6}Z)-(?P<random>[A-Za-z0-9]{10})$")


async def call(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any]:
    """(status, JSON body or raw bytes) of one request."""
    async with http.request(method, url, **kwargs) as response:
        raw = await response.read()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, raw


def refused(answer: tuple[int, Any], status: int, code: str) -> None:
    """``answer`` is the one REST error shape with this status and code, and it is documented."""
    got_status, body = answer
    assert got_status == status, answer
    assert isinstance(body, dict) and set(body) == {"error", "message"}, answer
    assert body["error"] == code and isinstance(body["message"], str) and body["message"]
    assert code in DOCUMENTED, f"{code} is not in docs/protocol.md's error-code table"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def sockets() -> AsyncIterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        await client.close()


def recording_settings(directory: Path) -> dict[str, Any]:
    return {
        "directory": str(directory),
        "width": 160,
        "height": 120,
        "fps": 5,
        "preset": "ultrafast",
        "encoder_threads": 1,
        "min_free_mb": 0,
    }


def plant(directory: Path, room: str, media: Path | None = None, **meta: Any) -> str:
    """A finished recording on disk (sidecar plus media file, or a symlink to ``media``)."""
    directory.mkdir(parents=True, exist_ok=True)
    start = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    rid = new_id(directory, room, start, "mp4")
    target = directory / f"{rid}.mp4"
    if media is None:
        target.write_bytes(os.urandom(2000))
    else:
        target.symlink_to(media)
    write_sidecar(
        directory,
        {
            "id": rid,
            "type": "composite",
            "room": room,
            "file": target.name,
            "state": "stopped",
            "start": start.isoformat().replace("+00:00", "Z"),
            "end": (start + timedelta(seconds=60)).isoformat().replace("+00:00", "Z"),
            "duration": 60.0,
            "participants": [],
            **meta,
        },
    )
    return rid


# -- 1. no route answers 500 ----------------------------------------------------------------


@pytest.mark.parametrize("index", ["%C2%B2", "%D9%A3", "%EF%BC%91", "1%0A", "+0", "-0", "0x0"])
async def test_track_index_accepts_only_ascii_digits(
    make_server: MakeServer, tmp_path: Path, http: aiohttp.ClientSession, index: str
) -> None:
    server = await make_server(recording={"directory": str(tmp_path)}, auth={"admin_token": TOKEN})
    track = f"{plant(tmp_path, 'r')}-raw-u1-camera-video.webm"
    rid = track.removesuffix("-raw-u1-camera-video.webm")
    (tmp_path / track).write_bytes(b"raw" * 10)
    sidecar = json.loads((tmp_path / f"{rid}.json").read_text())
    write_sidecar(tmp_path, {**sidecar, "raw_tracks": [{"user_id": "u1", "file": track}]})
    url = f"{server.url}/api/recordings/{rid}/tracks/"
    assert (await call(http, "GET", url + "0", headers=ADMIN)) == (200, b"raw" * 10)
    refused(await call(http, "GET", url + index, headers=ADMIN), 404, "not_found")


HOSTILE_SEGMENTS = ["%C2%B2", "%00", "%0A", "..", "%2E%2E", "%F0%9F%92%A9", "%FF", "a" * 300]


async def test_every_route_answers_a_documented_error_never_500(
    make_server: MakeServer, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    server = await make_server(
        recording={"directory": str(tmp_path)},
        auth={"admin_token": TOKEN},
        limits={"room_lookups_per_minute": 100_000},
    )
    routes = [
        ("GET", "/api/rooms/{}"),
        ("DELETE", "/api/rooms/{}"),
        ("POST", "/api/rooms/{}/recording"),
        ("DELETE", "/api/rooms/{}/recording"),
        ("GET", "/api/recordings/{}"),
        ("GET", "/api/recordings/{}/file"),
        ("GET", "/api/recordings/{}/tracks/{}"),
        ("DELETE", "/api/recordings/{}"),
        ("GET", "/api/{}"),
        ("POST", "/api/{}"),
        ("GET", "/{}"),
        ("POST", "/room/{}"),
    ]
    for method, route in routes:
        for segment in HOSTILE_SEGMENTS:
            for headers in (ADMIN, {"Authorization": "Bearer x"}, {}):
                url = server.url + route.format(segment, segment)
                status, body = answer = await call(http, method, url, headers=headers)
                assert status < 500, (method, url, answer)
                if status >= 400:
                    refused(answer, status, body.get("error") if isinstance(body, dict) else "?")
    # aiohttp's own refusals under /api/ come in the same shape.
    refused(await call(http, "GET", server.url + "/api/nothing-here"), 404, "not_found")
    refused(await call(http, "PUT", server.url + "/api/rooms"), 405, "method_not_allowed")
    big = json.dumps({"mode": "p2p", "pad": "x" * (2 * 1024**2)})
    answer = await call(http, "POST", server.url + "/api/rooms", data=big, headers=JSON)
    refused(answer, 413, "payload_too_large")


async def test_a_recording_id_with_a_trailing_newline_is_invalid(
    make_server: MakeServer, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    server = await make_server(recording={"directory": str(tmp_path)}, auth={"admin_token": TOKEN})
    rid = plant(tmp_path, "r")
    assert not valid_id(rid + "\n") and valid_id(rid)
    url = f"{server.url}/api/recordings/{rid}%0A"
    refused(await call(http, "GET", url, headers=ADMIN), 400, "invalid_payload")


# -- 2. room lookups are throttled per client address ---------------------------------------


async def test_room_lookups_are_rate_limited_per_client_address(
    make_server: MakeServer, http: aiohttp.ClientSession
) -> None:
    server = await make_server(
        limits={"room_lookups_per_minute": 1},
        auth={"admin_token": TOKEN},
        server={"trusted_proxies": ["127.0.0.1/32"]},
    )
    url = server.url + "/api/rooms/probe"
    first = {"X-Forwarded-For": "203.0.113.7"}
    answers = [await call(http, "GET", url, headers=first) for _ in range(12)]
    assert [a[0] for a in answers[:10]] == [404] * 10  # a burst, then one a minute
    for answer in answers[10:]:
        refused(answer, 429, "rate_limited")
    # Another client behind the same proxy has its own bucket; the admin is not throttled.
    refused(
        await call(http, "GET", url, headers={"X-Forwarded-For": "203.0.113.8"}),
        404,
        "unknown_room",
    )
    refused(await call(http, "GET", url, headers={**first, **ADMIN}), 404, "unknown_room")
    # A client that is not a trusted proxy cannot pick its bucket with X-Forwarded-For.
    direct = await make_server(limits={"room_lookups_per_minute": 1})
    for n in range(11):
        forged = {"X-Forwarded-For": f"198.51.100.{n}"}
        status, _ = await call(http, "GET", direct.url + "/api/rooms/probe", headers=forged)
    assert status == 429


async def test_room_creation_limit_uses_the_client_address(
    make_server: MakeServer, http: aiohttp.ClientSession
) -> None:
    server = await make_server(
        rooms={"create_per_minute": 1}, server={"trusted_proxies": ["127.0.0.1"]}
    )
    url = server.url + "/api/rooms"
    body = {"mode": "p2p"}
    for _ in range(5):
        status, _ = await call(http, "POST", url, json=body, headers={"X-Forwarded-For": "1.2.3.4"})
        assert status == 201
    answer = await call(http, "POST", url, json=body, headers={"X-Forwarded-For": "1.2.3.4"})
    refused(answer, 429, "rate_limited")
    answer = await call(http, "POST", url, json=body, headers={"X-Forwarded-For": "1.2.3.5"})
    assert answer[0] == 201, answer


# -- 3. recording credentials are no existence oracle ---------------------------------------


async def test_recording_credentials(
    make_server: MakeServer, tmp_path: Path, http: aiohttp.ClientSession, sockets: list[Client]
) -> None:
    server = await make_server(recording=recording_settings(tmp_path), auth={"admin_token": TOKEN})
    alice, zoe = Client(server.url), Client(server.url)
    sockets.extend([alice, zoe])
    await alice.connect()
    await zoe.connect()
    token = (await alice.join("r1", "alice", mode="sfu"))["recordingToken"]
    other = (await zoe.join("r2", "zoe", mode="sfu"))["recordingToken"]
    base = f"{server.url}/api/rooms/r1/recording"
    status, started = await call(http, "POST", base, headers=ADMIN)
    assert status == 201, started
    rid = started["recordingId"]
    assert (await call(http, "DELETE", base, headers=ADMIN))[0] == 200
    # The id keeps the room and the time readable and adds an unguessable part.
    shape = ID_SHAPE.match(rid)
    assert shape and shape["room"] == "r1" and valid_id(rid), rid

    recs = f"{server.url}/api/recordings"
    item, unknown = f"{recs}/{rid}", f"{recs}/r1-20260301T120000Z-AAAAAAAAAA"
    garbage = [{"params": {"token": "x"}}, {"headers": {"Authorization": "Bearer x"}}]
    for kwargs in garbage:  # credentials that name nobody: 401 everywhere, existing or not
        for method, url in [
            ("GET", recs),
            ("GET", item),
            ("GET", unknown),
            ("GET", item + "/file"),
            ("GET", unknown + "/file"),
            ("GET", item + "/tracks/0"),
            ("DELETE", item),
            ("DELETE", unknown),
        ]:
            refused(await call(http, method, url, **kwargs), 401, "unauthorized")
    for method, url in [("GET", recs), ("GET", item), ("GET", item + "/file")]:
        refused(await call(http, method, url), 401, "unauthorized")

    # Another room's token: that recording does not exist for it (same answer as unknown).
    theirs = {"params": {"token": other}}
    for url in (item, item + "/file", item + "/tracks/0"):
        refused(await call(http, "GET", url, **theirs), 404, "unknown_recording")
    assert await call(http, "GET", unknown, **theirs) == await call(http, "GET", item, **theirs)
    assert await call(http, "GET", recs, **theirs) == (200, {"recordings": []})

    # The room's own token reads but never deletes (whether the id exists or not).
    mine = {"headers": {"Authorization": f"Bearer {token}"}}
    status, meta = await call(http, "GET", item, **mine)
    assert status == 200 and meta["id"] == rid
    assert (await call(http, "GET", item + "/file", **mine))[0] == 200
    refused(await call(http, "GET", unknown, **mine), 404, "unknown_recording")
    refused(await call(http, "DELETE", item, **mine), 403, "forbidden")
    refused(await call(http, "DELETE", unknown, **mine), 403, "forbidden")

    # A room that is gone: its token still reads its recordings; one with none is unknown.
    await alice.close()
    await zoe.close()
    for _ in range(200):
        if server.server.rooms.get("r1") is None and server.server.rooms.get("r2") is None:
            break
        await asyncio.sleep(0.05)
    assert server.server.rooms.get("r1") is None and server.server.rooms.get("r2") is None
    assert (await call(http, "GET", item, **mine))[0] == 200
    refused(await call(http, "GET", recs, params={"token": other}), 401, "unauthorized")
    refused(await call(http, "DELETE", item + "x", headers=ADMIN), 404, "unknown_recording")
    assert (await call(http, "DELETE", item, headers=ADMIN))[0] == 204


def test_recording_ids_are_unguessable(tmp_path: Path) -> None:
    start = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    ids = set()
    for _ in range(20):
        rid = new_id(tmp_path, "Team Room/..", start, "mp4")
        (tmp_path / f"{rid}.mp4").touch()
        shape = ID_SHAPE.match(rid)
        assert shape and valid_id(rid), rid
        assert (shape["room"], shape["time"]) == ("Team_Room", "20260301T120000Z")
        ids.add(shape["random"])
    assert len(ids) == 20


# -- 4 and 5. one error shape; no cross-site state changes ----------------------------------


async def test_state_changing_calls_refuse_other_origins_and_non_json(
    make_server: MakeServer, http: aiohttp.ClientSession
) -> None:
    server = await make_server(
        auth={"admin_token": TOKEN}, server={"cors_origins": ["https://app.example.org"]}
    )
    rooms = server.url + "/api/rooms"
    body = json.dumps({"roomId": "csrf", "mode": "p2p"})
    # A cross-site form or fetch without a preflight can only send these content types.
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        answer = await call(http, "POST", rooms, data=body, headers={"Content-Type": kind})
        refused(answer, 415, "unsupported_media_type")
    answer = await call(http, "POST", rooms, data=body.encode())  # application/octet-stream
    refused(answer, 415, "unsupported_media_type")
    settings = server.url + "/api/settings"
    answer = await call(http, "PATCH", settings, data='{"changes": {}}', headers=ADMIN)
    refused(answer, 415, "unsupported_media_type")
    for origin in ("http://evil.example", "null", "http://127.0.0.1", "https://127.0.0.1:1"):
        evil = {**JSON, "Origin": origin}
        refused(await call(http, "POST", rooms, data=body, headers=evil), 403, "forbidden_origin")
        answer = await call(http, "DELETE", rooms + "/x", headers={**ADMIN, "Origin": origin})
        refused(answer, 403, "forbidden_origin")
        answer = await call(http, "PATCH", settings, data="{}", headers={**ADMIN, **evil})
        refused(answer, 403, "forbidden_origin")
    assert server.server.rooms.get("csrf") is None
    # Same origin, a listed origin, no Origin (curl, the CLI), and GETs from anywhere pass.
    own = {**JSON, "Origin": server.url}
    assert (await call(http, "POST", rooms, data=body, headers=own))[0] == 201
    listed = {
        "Content-Type": "application/json; charset=utf-8",
        "Origin": "https://app.example.org",
    }
    created = await call(http, "POST", rooms, json={"mode": "sfu"}, headers=listed)
    assert created[0] == 201, created
    assert (await call(http, "POST", rooms, json={"mode": "p2p"}))[0] == 201
    answer = await call(http, "GET", rooms + "/csrf", headers={"Origin": "http://evil.example"})
    assert answer[0] == 200
    # Engine.IO's polling transport posts text/plain: Socket.IO still works over it.
    polling = server.url + "/socket.io/?EIO=4&transport=polling"
    status, opened = await call(http, "GET", polling)
    assert status == 200 and opened.startswith(b"0{"), opened
    polling += "&sid=" + json.loads(opened[1:])["sid"]
    plain = {"Content-Type": "text/plain;charset=UTF-8", "Origin": server.url}
    assert await call(http, "POST", polling, data="40", headers=plain) == (200, b"OK")
    status, connected = await call(http, "GET", polling)
    assert status == 200 and connected.startswith(b"40{"), connected


async def test_origin_behind_a_tls_proxy(
    make_server: MakeServer, http: aiohttp.ClientSession
) -> None:
    """Behind nginx the page is https: a trusted proxy's X-Forwarded-Proto says so."""
    site = {"Host": "meet.example.org", "Origin": "https://meet.example.org", **JSON}
    body = {"mode": "p2p"}
    proxied = await make_server(
        server={"allowed_hosts": ["meet.example.org"], "trusted_proxies": ["127.0.0.1"]}
    )
    url = proxied.url + "/api/rooms"
    answer = await call(
        http, "POST", url, json=body, headers={**site, "X-Forwarded-Proto": "https"}
    )
    assert answer[0] == 201, answer
    refused(await call(http, "POST", url, json=body, headers=site), 403, "forbidden_origin")
    # The same header from a client that is not a trusted proxy proves nothing.
    direct = await make_server(server={"allowed_hosts": ["meet.example.org"]})
    answer = await call(
        http,
        "POST",
        direct.url + "/api/rooms",
        json=body,
        headers={**site, "X-Forwarded-Proto": "https"},
    )
    refused(answer, 403, "forbidden_origin")


# -- 6. DNS rebinding -----------------------------------------------------------------------


async def test_unknown_hosts_are_refused_socket_io_handshake_included(
    make_server: MakeServer, http: aiohttp.ClientSession, sockets: list[Client]
) -> None:
    server = await make_server()
    port = server.port
    rebound = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    handshake = server.url + "/socket.io/?EIO=4&transport=polling"
    refused(await call(http, "GET", handshake, headers=rebound), 400, "invalid_host")
    refused(
        await call(http, "GET", server.url + "/api/config", headers=rebound), 400, "invalid_host"
    )
    answer = await call(http, "GET", server.url + "/", headers=rebound)
    refused(answer, 400, "invalid_host")
    assert "server.allowed_hosts" in answer[1]["message"]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refusal:
        await http.ws_connect(
            f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", headers=rebound
        )
    assert refusal.value.status == 400
    # Loopback names, with or without the port, are the server's own.
    for host in (f"127.0.0.1:{port}", "localhost", f"LOCALHOST:{port}", f"app.localhost:{port}"):
        status, _ = await call(http, "GET", handshake, headers={"Host": host})
        assert status == 200, host
    sockets.append(await Client(server.url).connect())  # the usual websocket handshake


async def test_allowed_hosts_setting(
    make_server: MakeServer, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    listed = await make_server(server={"allowed_hosts": ["meet.example.org", "[2001:db8::1]:8443"]})
    for host, status in [
        ("meet.example.org", 200),
        ("Meet.Example.Org:8443", 200),
        ("[2001:db8::1]:8443", 200),
        ("[2001:db8::1]:8444", 400),
        ("[::1]:8444", 200),
        ("localhost:1", 200),  # loopback names are always the server's own
        ("other.example.org", 400),
        ("meet.example.org.evil.example", 400),
        ("meet.example.org@evil.example", 400),
    ]:
        answer = await call(http, "GET", listed.url + "/health", headers={"Host": host})
        assert answer[0] == status, (host, answer)
    anything = await make_server(server={"allowed_hosts": ["*"]})
    answer = await call(http, "GET", anything.url + "/health", headers={"Host": "any.example"})
    assert answer[0] == 200
    cors = await make_server(server={"cors_origins": ["https://app.example.org:8443"]})
    answer = await call(http, "GET", cors.url + "/health", headers={"Host": "app.example.org"})
    assert answer[0] == 200
    caplog.set_level(logging.WARNING, logger="sfu")
    wildcard = await make_server(server={"host": "0.0.0.0"})
    answer = await call(http, "GET", wildcard.url + "/health", headers={"Host": "any.example"})
    assert answer[0] == 200
    warnings = [r for r in caplog.records if "allowed_hosts" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


# -- 7. symlinks in the recordings directory ------------------------------------------------


async def test_symlinks_in_the_recordings_directory_are_not_served(
    make_server: MakeServer, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    directory = tmp_path / "recordings"
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"secret" * 100)
    server = await make_server(recording={"directory": str(directory)}, auth={"admin_token": TOKEN})
    recs = f"{server.url}/api/recordings"
    linked = plant(directory, "linked", media=secret)
    answer = await call(http, "GET", f"{recs}/{linked}/file", headers=ADMIN)
    refused(answer, 404, "not_found")
    # A raw track that is a symlink, even to a file inside the directory.
    rid = plant(directory, "raw")
    inside = directory / f"{rid}.mp4"
    track = directory / f"{rid}-raw-u1-camera-video.webm"
    track.symlink_to(inside)
    sidecar = json.loads((directory / f"{rid}.json").read_text())
    write_sidecar(directory, {**sidecar, "raw_tracks": [{"user_id": "u1", "file": track.name}]})
    refused(await call(http, "GET", f"{recs}/{rid}/tracks/0", headers=ADMIN), 404, "not_found")
    assert (await call(http, "GET", f"{recs}/{rid}/file", headers=ADMIN))[0] == 200
    # A sidecar that is a symlink (to a sidecar outside) is no recording at all.
    outside = tmp_path / "outside"
    hidden = plant(outside, "hidden")
    (directory / f"{hidden}.json").symlink_to(outside / f"{hidden}.json")
    (directory / f"{hidden}.mp4").write_bytes(b"x")
    refused(await call(http, "GET", f"{recs}/{hidden}", headers=ADMIN), 404, "unknown_recording")
    status, listing = await call(http, "GET", recs, headers=ADMIN)
    assert status == 200 and hidden not in {m["id"] for m in listing["recordings"]}
    assert b"secret" not in json.dumps(listing).encode()
