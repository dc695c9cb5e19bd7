"""Property tests of the HTTP side: any request, hostile or not, gets a documented answer.

Requests are drawn from the routes of docs/protocol.md with odd path segments (percent
escapes, Unicode digits, dot segments, very long ones), methods, credentials, Origin and
Host headers, content types and bodies (JSON, non-standard JSON, bytes). Whatever comes:

- never a 5xx and never a traceback in the log;
- every error under ``/api/`` (and every refusal of the HTTP edge anywhere) is
  ``{error: CODE, message}`` with a CODE that docs/protocol.md documents;
- a JSON answer is strict JSON; a refused call changes no room, setting or recording;
- the edge rules: a foreign ``Origin`` on a state-changing call is 403 ``forbidden_origin``,
  a ``Host`` the server does not answer to is 400 ``invalid_host``, a body that is not
  ``application/json`` is 415 ``unsupported_media_type``, room lookups are rate limited.
"""

from __future__ import annotations

import json
import logging
import string
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from yarl import URL

from sfu.settings import flatten, load_settings
from tests.conftest import RunningServer
from tests.support.checks import documented_rest_codes, tracebacks
from tests.support.raw_socketio import StrictJSONError, strict_loads

MakeServer = Callable[..., Awaitable[RunningServer]]
TOKEN = "fuzz-admin-token"
HIGH = 10**6
ROOM = "existing"
RECORDING = "x"  # the brief's example: GET /api/recordings/x/tracks/%C2%B2


@dataclass
class Api:
    running: RunningServer
    http: aiohttp.ClientSession
    recordings: Path

    @property
    def origin(self) -> str:
        return self.running.url

    def put_back(self) -> None:
        """Undoes what an accepted call of the previous example did (a deleted room or
        recording, rooms made by POST), so every example sees the same server."""
        rooms = self.running.server.rooms
        for room_id in [r for r in rooms.rooms if r != ROOM]:
            rooms.delete(room_id)
        if rooms.get(ROOM) is None:
            rooms.create(ROOM, "p2p")
        write_recording(self.recordings)

    def state(self) -> dict[str, Any]:
        rooms = self.running.server.rooms.rooms
        return {
            "rooms": sorted(rooms),
            "settings": flatten(self.running.settings),
            "recordings": sorted(p.name for p in self.recordings.iterdir()),
        }

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request with the path sent exactly as given (percent escapes included)."""
        url = URL(f"{self.running.url}{path}", encoded=True)
        skip = [] if body is not None and "Content-Type" in (headers or {}) else ["Content-Type"]
        async with self.http.request(
            method,
            url,
            headers=headers or {},
            data=body,
            skip_auto_headers=skip,
            allow_redirects=False,
        ) as response:
            return response.status, dict(response.headers), await response.read()


def write_recording(directory: Path) -> None:
    """A finished recording with one raw track, as the store writes them."""
    directory.mkdir(parents=True, exist_ok=True)
    meta = {
        "id": RECORDING,
        "room": ROOM,
        "file": f"{RECORDING}.mp4",
        "state": "done",
        "start": "2026-01-01T00:00:00+00:00",
        "end": "2026-01-01T00:00:10+00:00",
        "duration": 10.0,
        "raw_tracks": [{"file": f"{RECORDING}-raw-0.mka", "userId": "alice", "kind": "audio"}],
    }
    (directory / f"{RECORDING}.json").write_text(json.dumps(meta))
    (directory / f"{RECORDING}.mp4").write_bytes(b"\x00" * 64)
    (directory / f"{RECORDING}-raw-0.mka").write_bytes(b"\x00" * 32)


@pytest.fixture
async def api(make_server: MakeServer, tmp_path: Path) -> AsyncIterator[Api]:
    directory = tmp_path / "recordings"
    write_recording(directory)
    running = await make_server(
        server={"host": "127.0.0.1"},
        auth={"admin_token": TOKEN},
        rooms={"create_per_minute": HIGH},
        limits={"room_lookups_per_minute": HIGH},
        recording={"directory": str(directory), "min_free_mb": 0},
    )
    running.server.rooms.create(ROOM, "p2p")
    async with aiohttp.ClientSession() as http:
        yield Api(running, http, directory)


def api_path(path: str) -> bool:
    return path.split("?", 1)[0].startswith("/api/") or path.split("?", 1)[0] == "/api"


EDGE_CODES = {"invalid_host", "forbidden_origin", "unsupported_media_type"}


def check_answer(method: str, path: str, status: int, headers: dict[str, str], raw: bytes) -> Any:
    """The REST contract for any answer; returns the parsed JSON body (or None)."""
    assert status < 500, f"{method} {path}: {status} {raw[:300]!r}"
    body: Any = None
    is_json = headers.get("Content-Type", "").startswith("application/json")
    if raw and is_json:
        try:
            body = strict_loads(raw.decode())
        except (StrictJSONError, UnicodeDecodeError) as exc:
            raise AssertionError(
                f"{method} {path}: not strict JSON ({exc}): {raw[:200]!r}"
            ) from None
    edge = isinstance(body, dict) and body.get("error") in EDGE_CODES
    if status >= 400 and method != "HEAD" and (api_path(path) or edge):
        assert isinstance(body, dict), f"{method} {path}: {status} body {raw[:200]!r}"
        code = body.get("error")
        assert code in documented_rest_codes(), f"{method} {path}: undocumented {code!r}"
        assert isinstance(body.get("message"), str) and body["message"], body
    if status == 401 and api_path(path) and method != "HEAD":
        assert headers.get("WWW-Authenticate", "").startswith("Bearer"), headers
    return body


# -- strategies -----------------------------------------------------------------------------
ODD_SEGMENTS = [
    ROOM,
    RECORDING,
    "nope",
    "..",
    ".",
    "%2e%2e",
    "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "%00",
    "%C2%B2",  # superscript two: str.isdigit() is True, int() fails
    "%D9%A3",  # Arabic-Indic three: isdigit and int() both take it
    "%EF%BC%91",  # fullwidth one
    "%FF",
    "%E2%80%AE",
    "%F0%9F%98%80",
    "-1",
    "0",
    "00",
    "99999999999999999999999999",
    "x.json",
    "x%0A",
    "a" * 300,
    "%25",
    "%20",
]
SEGMENT = st.one_of(
    st.sampled_from(ODD_SEGMENTS),
    st.text(min_size=1, max_size=24).map(lambda s: quote(s, safe="")),
)
ROUTES = [
    "/api/rooms",
    "/api/rooms/{a}",
    "/api/rooms/{a}/recording",
    "/api/rooms/{a}/{b}",
    "/api/config",
    "/api/settings",
    "/api/recordings",
    "/api/recordings/{a}",
    "/api/recordings/{a}/file",
    "/api/recordings/{a}/thumbnail",
    "/api/recordings/{a}/tracks/{b}",
    "/api/recordings/prune",
    "/api/{a}",
    "/api",
    "/health",
    "/stats",
    "/metrics",
    "/{a}",
    "/room/{a}",
    "/socket.io/?EIO={a}&transport={b}",
]
METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS"]
KEYS = st.sampled_from(sorted(flatten(load_settings())))


@st.composite
def paths(draw: st.DrawFn) -> str:
    route = draw(st.sampled_from(ROUTES))
    path = route.format(a=draw(SEGMENT), b=draw(SEGMENT))
    if draw(st.integers(0, 4)) == 0:
        path += ("&" if "?" in path else "?") + "token=" + draw(SEGMENT)
    return path


HOSTILE_JSON = st.sampled_from(
    [
        b"NaN",
        b'{"mode": NaN}',
        b'{"mode": "p2p", "roomId": Infinity}',
        b'{"changes": {"rooms.max_rooms": 1e999}}',
        b'{"roomId": "\\ud800", "mode": "p2p"}',
        b'{"mode": "p2p", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"mode": "p2p", "n": ' + b"9" * 5000 + b"}",
        b'{"mode": "p2p"',
        b"\xff\xfe{}",
        b'{"mode": "p2p"}\x00',
        b"",
        b"null",
        b"[]",
        b'"p2p"',
    ]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3)
    ),
    max_leaves=8,
)
BODIES = st.one_of(
    st.none(),
    HOSTILE_JSON,
    st.binary(max_size=64),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.builds(
        lambda room, mode: json.dumps({"roomId": room, "mode": mode}).encode(),
        st.text(string.ascii_letters, min_size=1, max_size=10) | st.text(max_size=10),
        st.sampled_from(["p2p", "sfu", "P2P", "", "mesh"]),
    ),
    # A meeting's display name (#18): any text (control characters, too long), or no string.
    st.builds(
        lambda name: json.dumps({"mode": "p2p", "name": name}).encode(),
        st.text(max_size=12) | st.text(min_size=101, max_size=120) | JSON_VALUES,
    ),
    # Setting changes whose value no setting takes: refused, nothing applied.
    st.builds(
        lambda key, value: json.dumps({"changes": {key: value}}).encode(),
        KEYS,
        st.dictionaries(st.text(max_size=4), st.integers(), min_size=1, max_size=2),
    ),
    st.builds(lambda layout: json.dumps({"layout": layout}).encode(), st.text(max_size=8)),
)
CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=zz",
        "application/octet-stream",
        "a/b;;;=",
        "",
    ]
)
AUTH = st.sampled_from(
    [None, f"Bearer {TOKEN}", "Bearer wrong", "Bearer ", "Basic YTpi", f"bearer {TOKEN}"]
)


# -- any request -----------------------------------------------------------------------------
@settings(max_examples=4 * settings.default.max_examples)  # ~1 ms a request: search wider
@given(
    method=st.sampled_from(METHODS),
    path=paths(),
    auth=AUTH,
    content_type=CONTENT_TYPES,
    body=BODIES,
    origin=st.sampled_from([None, "own", "http://evil.example", "null"]),
)
@example(
    method="GET",
    path=f"/api/recordings/{RECORDING}/tracks/%C2%B2",
    auth=f"Bearer {TOKEN}",
    content_type=None,
    body=None,
    origin=None,
)
async def test_any_request_gets_a_documented_answer_and_never_a_500(
    api: Api,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    auth: str | None,
    content_type: str | None,
    body: bytes | None,
    origin: str | None,
) -> None:
    caplog.set_level(logging.INFO)
    api.put_back()
    headers: dict[str, str] = {}
    if auth is not None:
        headers["Authorization"] = auth
    if content_type is not None and body is not None:
        headers["Content-Type"] = content_type
    if origin is not None:
        headers["Origin"] = api.origin if origin == "own" else origin
    first = len(caplog.records)
    before = api.state()
    status, answer_headers, raw = await api.request(method, path, headers=headers, body=body)
    check_answer(method, path, status, answer_headers, raw)
    if status >= 400:
        assert api.state() == before, f"refused {method} {path} ({status}) changed the state"
    assert not tracebacks(caplog.records[first:])


# -- the edge rules --------------------------------------------------------------------------
STATE_CHANGING = [
    ("POST", "/api/rooms", b'{"mode": "p2p"}'),
    ("DELETE", f"/api/rooms/{ROOM}", None),
    ("PATCH", "/api/settings", b'{"changes": {"rooms.max_rooms": 7}}'),
    ("POST", f"/api/rooms/{ROOM}/recording", b"{}"),
    ("DELETE", f"/api/rooms/{ROOM}/recording", None),
    ("DELETE", f"/api/recordings/{RECORDING}", None),
    ("POST", "/api/recordings/prune", None),
]
FOREIGN_ORIGINS = st.one_of(
    st.just("null"),
    st.builds(
        lambda scheme, host, port: f"{scheme}://{host}{port}",
        st.sampled_from(["http", "https"]),
        st.sampled_from(["evil.example", "127.0.0.1.evil.example", "localhost.evil", "10.0.0.1"])
        | st.from_regex(r"[a-z]{1,12}\.[a-z]{2,6}", fullmatch=True),
        st.sampled_from(["", ":80", ":5000", ":1"]),
    ),
)


@given(call=st.sampled_from(STATE_CHANGING), origin=FOREIGN_ORIGINS, admin=st.booleans())
async def test_state_changing_calls_from_a_foreign_origin_are_refused(
    api: Api,
    caplog: pytest.LogCaptureFixture,
    call: tuple[str, str, bytes | None],
    origin: str,
    admin: bool,
) -> None:
    api.put_back()
    method, path, body = call
    headers = {"Origin": origin, "Content-Type": "application/json"}
    if admin:
        headers["Authorization"] = f"Bearer {TOKEN}"
    before = api.state()
    status, answer_headers, raw = await api.request(method, path, headers=headers, body=body)
    answer = check_answer(method, path, status, answer_headers, raw)
    assert (status, answer.get("error")) == (403, "forbidden_origin"), (status, raw[:200])
    assert api.state() == before
    assert not tracebacks(caplog.records)


async def test_same_origin_state_changing_calls_pass_the_edge(api: Api) -> None:
    """The control: the server's own origin (the web app) is let through."""
    headers = {"Origin": api.origin, "Content-Type": "application/json"}
    headers["Authorization"] = f"Bearer {TOKEN}"
    status, _, raw = await api.request("POST", "/api/rooms", headers=headers, body=b"{}")
    assert status == 201, raw
    status, _, raw = await api.request("DELETE", f"/api/rooms/{ROOM}", headers=headers)
    assert status == 200, raw


FOREIGN_HOSTS = st.one_of(
    st.sampled_from(
        ["evil.example", "evil.example:5000", "127.0.0.1.nip.io", "localhost.evil.example", "0"]
    ),
    st.from_regex(r"[a-z]{1,10}\.(com|net|example)(:[0-9]{2,5})?", fullmatch=True),
)


@given(
    host=FOREIGN_HOSTS,
    path=st.sampled_from(
        ["/api/config", "/api/rooms/existing", "/", "/socket.io/?EIO=4&transport=polling"]
    ),
)
async def test_a_host_the_server_does_not_answer_to_is_refused(
    api: Api, caplog: pytest.LogCaptureFixture, host: str, path: str
) -> None:
    """DNS rebinding: a page under the attacker's name reaches the server with its Host."""
    status, headers, raw = await api.request("GET", path, headers={"Host": host})
    answer = check_answer("GET", path, status, headers, raw)
    assert (status, answer.get("error")) == (400, "invalid_host"), (host, status, raw[:200])
    assert not tracebacks(caplog.records)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "app.localhost"])
async def test_loopback_hosts_are_answered(api: Api, host: str) -> None:
    port = api.running.port
    status, _, raw = await api.request("GET", "/api/config", headers={"Host": f"{host}:{port}"})
    assert status == 200, raw


NOT_JSON_TYPES = st.one_of(
    st.sampled_from(
        [
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=zz",
            "application/octet-stream",
            "text/json",
            "application/jsonx",
        ]
    ),
    st.from_regex(r"[a-z]{1,10}/[a-z]{1,10}", fullmatch=True).filter(
        lambda t: t != "application/json"
    ),
)
JSON_BODY_CALLS = [
    ("POST", "/api/rooms", b'{"mode": "p2p"}'),
    ("PATCH", "/api/settings", b'{"changes": {"rooms.max_rooms": 7}}'),
    ("POST", f"/api/rooms/{ROOM}/recording", b"{}"),
]


@given(call=st.sampled_from(JSON_BODY_CALLS), content_type=NOT_JSON_TYPES | st.none())
async def test_bodies_not_sent_as_json_are_refused(
    api: Api,
    caplog: pytest.LogCaptureFixture,
    call: tuple[str, str, bytes],
    content_type: str | None,
) -> None:
    """A cross-site form (or a fetch without preflight) cannot send application/json."""
    api.put_back()
    method, path, body = call
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    before = api.state()
    status, answer_headers, raw = await api.request(method, path, headers=headers, body=body)
    answer = check_answer(method, path, status, answer_headers, raw)
    assert (status, answer.get("error")) == (415, "unsupported_media_type"), (status, raw[:200])
    assert api.state() == before
    assert not tracebacks(caplog.records)


async def test_room_lookups_are_rate_limited(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Probing room ids: beyond the per-address budget, 429 for unknown and existing rooms
    alike (so the limit says nothing about which exist); the admin is not limited."""
    running = await make_server(auth={"admin_token": TOKEN}, limits={"room_lookups_per_minute": 10})
    running.server.rooms.create(ROOM, "p2p")
    async with aiohttp.ClientSession() as http:
        statuses = []
        for i in range(40):
            async with http.get(f"{running.url}/api/rooms/probe{i}") as resp:
                statuses.append(resp.status)
                body = await resp.json()
                if resp.status == 429:
                    assert body["error"] == "rate_limited" and body["message"], body
        assert statuses[0] == 404 and statuses.count(404) <= 12, statuses
        assert 429 in statuses
        async with http.get(f"{running.url}/api/rooms/{ROOM}") as resp:
            assert resp.status == 429
        admin = {"Authorization": f"Bearer {TOKEN}"}
        async with http.get(f"{running.url}/api/rooms/{ROOM}", headers=admin) as resp:
            assert resp.status == 200
    assert not tracebacks(caplog.records)


@pytest.mark.parametrize(
    "index", ["%C2%B2", "%D9%A3", "%EF%BC%91", "-1", "1", "999999999999999999999", "%00", "0x0"]
)
async def test_raw_track_index_is_ascii_digits_only(
    api: Api, caplog: pytest.LogCaptureFixture, index: str
) -> None:
    path = f"/api/recordings/{RECORDING}/tracks/{index}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    status, answer_headers, raw = await api.request("GET", path, headers=headers)
    answer = check_answer("GET", path, status, answer_headers, raw)
    assert status in (400, 404) and answer["error"] in ("invalid_payload", "not_found"), raw
    status, _, raw = await api.request(
        "GET", f"/api/recordings/{RECORDING}/tracks/0", headers=headers
    )
    assert status == 200 and raw == b"\x00" * 32  # the control: track 0 exists
    assert not tracebacks(caplog.records)


async def test_ids_with_a_trailing_newline_are_refused(api: Api) -> None:
    """An id regex with "$" also matches "room\\n"; ids are the characters they claim."""
    headers = {"Content-Type": "application/json"}
    status, _, raw = await api.request(
        "POST", "/api/rooms", headers=headers, body=b'{"roomId": "room\\n", "mode": "p2p"}'
    )
    assert status == 400 and json.loads(raw)["error"] == "invalid_payload", raw
    assert "room\n" not in api.running.server.rooms.rooms
