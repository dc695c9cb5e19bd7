"""The recordings store (listing, deletion, retention, id checks) and its REST routes."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from sfu.recording.store import RecordingStore, new_id, valid_id, write_sidecar
from sfu.server.recording_routes import Grant, add_routes


def make(directory: Path, room: str, start: datetime, size: int, state: str = "stopped") -> str:
    rid = new_id(directory, room, start, "mp4")
    (directory / f"{rid}.mp4").write_bytes(os.urandom(size))
    end = start + timedelta(seconds=60)
    write_sidecar(
        directory,
        {
            "id": rid,
            "type": "composite",
            "room": room,
            "file": f"{rid}.mp4",
            "state": state,
            "start": start.isoformat().replace("+00:00", "Z"),
            "end": end.isoformat().replace("+00:00", "Z"),
            "duration": 60.0,
            "participants": [],
        },
    )
    return rid


NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_ids_names_and_listing(tmp_path):
    a = make(tmp_path, "Team Room/..", NOW, 1000)
    b = make(tmp_path, "Team Room/..", NOW, 1000)  # same second: a distinct id
    for rid in (a, b):
        assert re.fullmatch(r"Team_Room-20260301T120000Z-[A-Za-z0-9]{10}", rid) and valid_id(rid)
    assert a != b
    store = RecordingStore(tmp_path)
    assert {m["id"] for m in store.list()} == {a, b}
    assert store.get(a)["size"] == 1000
    assert store.file_path(a) == tmp_path / f"{a}.mp4"
    for bad in ["../etc/passwd", "..", ".hidden", "a/b", "a.b", "", "x" * 300, "a\x00b"]:
        assert not valid_id(bad)
        assert store.get(bad) is None and store.file_path(bad) is None and not store.delete(bad)


def test_sidecar_cannot_point_outside(tmp_path):
    rid = make(tmp_path, "r", NOW, 10)
    write_sidecar(tmp_path, {"id": rid, "file": "../../etc/passwd", "start": "x"})
    assert RecordingStore(tmp_path).get(rid) is None


def test_delete_and_an_active_recording_is_kept(tmp_path):
    a = make(tmp_path, "r", NOW, 10)
    b = make(tmp_path, "r", NOW + timedelta(hours=1), 10, state="recording")
    store = RecordingStore(tmp_path, active={b})
    assert store.get(b)["state"] == "recording"
    assert not store.delete(b)
    assert store.delete(a) and not (tmp_path / f"{a}.mp4").exists()
    assert not (tmp_path / f"{a}.json").exists()
    assert RecordingStore(tmp_path).get(b)["state"] == "interrupted"  # its writer is gone


def test_retention_by_age_then_total_size(tmp_path):
    old = make(tmp_path, "r", NOW - timedelta(days=10), 100_000)
    mid = make(tmp_path, "r", NOW - timedelta(days=2), 600_000)
    new = make(tmp_path, "r", NOW - timedelta(days=1), 600_000)
    store = RecordingStore(tmp_path, retention_days=5, max_total_mb=1)
    deleted = store.apply_retention(now=NOW.timestamp())
    assert deleted == [old, mid]
    assert [m["id"] for m in store.list()] == [new]


def _authorize(request: web.Request) -> Grant | None:
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    token = token or request.query.get("token", "")
    if token == "admin":
        return Grant(admin=True, reads=lambda meta: True)
    if token.startswith("room-"):
        return Grant(admin=False, reads=lambda meta: token == f"room-{meta.get('room')}")
    return None


@pytest.fixture
async def client(tmp_path):
    store = RecordingStore(tmp_path)
    app = web.Application()
    add_routes(app, store, _authorize)
    # A secret next to the recordings directory: traversal must never reach it.
    (tmp_path.parent / "secret.txt").write_text("secret")
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        c.store_dir = tmp_path
        yield c


ADMIN = {"Authorization": "Bearer admin"}


async def test_list_and_metadata_need_a_token(client):
    a = make(client.store_dir, "alpha", NOW, 5000)
    b = make(client.store_dir, "beta", NOW, 5000)
    r = await client.get("/api/recordings")
    assert r.status == 401
    r = await client.get("/api/recordings", headers=ADMIN)
    assert r.status == 200
    assert {m["id"] for m in (await r.json())["recordings"]} == {a, b}
    r = await client.get("/api/recordings", params={"token": "room-alpha"})
    assert [m["id"] for m in (await r.json())["recordings"]] == [a]
    r = await client.get(f"/api/recordings/{a}", headers=ADMIN)
    assert r.status == 200 and (await r.json())["room"] == "alpha"
    assert (await client.get(f"/api/recordings/{a}")).status == 401
    r = await client.get(f"/api/recordings/{b}", headers={"Authorization": "Bearer room-alpha"})
    assert r.status == 404  # another room's recording is as unknown as a missing one
    r = await client.get(f"/api/recordings/{a}", headers={"Authorization": "Bearer nobody"})
    assert r.status == 401 and (await r.json())["error"] == "unauthorized"
    assert (await client.get("/api/recordings/nope-1", headers=ADMIN)).status == 404


async def test_ranged_download(client):
    a = make(client.store_dir, "alpha", NOW, 5000)
    data = (client.store_dir / f"{a}.mp4").read_bytes()
    r = await client.get(f"/api/recordings/{a}/file", headers=ADMIN)
    assert r.status == 200 and await r.read() == data
    assert "attachment" in r.headers["Content-Disposition"]
    r = await client.get(f"/api/recordings/{a}/file", headers={**ADMIN, "Range": "bytes=100-199"})
    assert r.status == 206
    assert r.headers["Content-Range"] == "bytes 100-199/5000"
    assert await r.read() == data[100:200]
    r = await client.get(f"/api/recordings/{a}/file", params={"token": "room-beta"})
    assert r.status == 404


@pytest.mark.parametrize(
    "path",
    [
        "/api/recordings/..%2F..%2Fetc%2Fpasswd",
        "/api/recordings/..%2Fsecret.txt/file",
        "/api/recordings/%2E%2E/file",
        "/api/recordings/..",
        "/api/recordings/a.b/file",
        "/api/recordings/..%5Csecret/file",
    ],
)
async def test_traversal_is_refused(client, path):
    r = await client.get(path, headers=ADMIN)
    assert r.status in (400, 404)
    assert b"secret" not in await r.read()


async def test_delete(client):
    a = make(client.store_dir, "alpha", NOW, 10)
    assert (await client.delete(f"/api/recordings/{a}")).status == 401
    assert (await client.delete(f"/api/recordings/{a}", params={"token": "room-x"})).status == 403
    assert (await client.delete(f"/api/recordings/{a}", headers=ADMIN)).status == 204
    assert (await client.get(f"/api/recordings/{a}", headers=ADMIN)).status == 404
    assert not (client.store_dir / f"{a}.mp4").exists()


async def test_raw_track_download(client):
    a = make(client.store_dir, "alpha", NOW, 10)
    track = client.store_dir / f"{a}-raw-u1-camera-video.webm"
    track.write_bytes(b"raw-bytes" * 100)
    meta = json.loads((client.store_dir / f"{a}.json").read_text())
    meta["raw_tracks"] = [
        {"user_id": "u1", "kind": "video", "file": track.name},
        {"user_id": "u2", "kind": "audio", "file": "../secret.txt"},
    ]
    write_sidecar(client.store_dir, meta)
    r = await client.get(f"/api/recordings/{a}/tracks/0", headers={**ADMIN, "Range": "bytes=0-8"})
    assert r.status == 206 and await r.read() == b"raw-bytes"
    for bad in ("1", "2", "-1", "x"):
        r = await client.get(f"/api/recordings/{a}/tracks/{bad}", headers=ADMIN)
        assert r.status == 404 and b"secret" not in await r.read()
    assert (await client.get(f"/api/recordings/{a}/tracks/0")).status == 401
