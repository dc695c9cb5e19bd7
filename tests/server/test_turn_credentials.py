"""TURN credentials: coturn's shared-secret scheme, who gets them, their renewal, and secrets
kept out of answers, logs and errors.

The minting is checked against ``openssl`` (an independent HMAC-SHA1); the routes and events
against a real server with real Socket.IO clients. ``tests/e2e/test_turn.py`` proves the
credentials against a real coturn.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import subprocess
import time
from typing import Any

import aiohttp
import pytest

from sfu.config_file import value_for
from sfu.media import turn
from sfu.media.ice import rtc_configuration
from sfu.settings import SettingsError, flatten, load_settings
from tests.conftest import Client

TOKEN = "turn-admin-token"
SECRET = "shared-Secret-4f1c"  # coturn's static-auth-secret
STATIC = "static-Pass-9d2e"  # a static TURN password
TURN_URLS = ["turn:turn.example.org:3478?transport=udp", "turn:turn.example.org:3478?transport=tcp"]


def openssl_credential(secret: str, username: str) -> str:
    """base64(HMAC-SHA1(secret, username)) computed by openssl, not by the code under test."""
    digest = subprocess.run(
        ["openssl", "dgst", "-sha1", "-hmac", secret, "-binary"],
        input=username.encode(),
        capture_output=True,
        check=True,
    ).stdout
    return base64.b64encode(digest).decode()


def valid(server: dict[str, Any], secret: str, identity: str) -> int:
    """Checks a minted RTCIceServer as coturn would; returns its expiry."""
    match = re.fullmatch(r"(\d+):(.+)", server["username"])
    assert match and match[2] == identity, server["username"]
    expected = hmac.new(secret.encode(), server["username"].encode(), hashlib.sha1).digest()
    assert server["credential"] == base64.b64encode(expected).decode()
    return int(match[1])


def ice_section(**extra: Any) -> dict[str, Any]:
    return {
        "servers": [
            {"urls": ["stun:turn.example.org:3478"]},
            {"urls": TURN_URLS},
            {"urls": ["turns:static.example.org:5349"], "username": "meet", "credential": STATIC},
        ],
        "turn_secret": SECRET,
        **extra,
    }


async def request(method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, url, **kwargs) as response:
            return response.status, await response.text()


def admin() -> dict[str, dict[str, str]]:
    return {"headers": {"Authorization": f"Bearer {TOKEN}"}}


# -- minting -------------------------------------------------------------------------------
def test_mint_is_coturns_rest_credential() -> None:
    minted = turn.mint("north-wind", "alice", 3600, now=1_700_000_000)
    assert minted.username == "1700003600:alice"
    assert minted.expires == 1_700_003_600
    # A known vector, and openssl's own computation of it.
    assert minted.credential == "iRtTIZ3N38dm9S+dP+UkHfnN9Qo="
    assert minted.credential == openssl_credential("north-wind", minted.username)
    other = turn.mint(SECRET, "bob-2_x", 86400)
    assert other.credential == openssl_credential(SECRET, other.username)


def test_mint_expires_ttl_from_now() -> None:
    before = time.time()
    minted = turn.mint(SECRET, "alice", 600)
    assert int(before) + 600 <= minted.expires <= int(time.time()) + 600
    assert minted.username == f"{minted.expires}:alice"
    assert turn.mint(SECRET, "alice", 600, now=0).username == "600:alice"


def test_participant_gets_minted_static_and_stun_entries() -> None:
    ice = load_settings(overrides={"ice": ice_section(turn_ttl_seconds=900)}).ice
    servers, expires = turn.participant_ice_servers(ice, "alice", now=1_800_000_000)
    stun, minted, static = servers
    assert stun == {"urls": ["stun:turn.example.org:3478"]}
    assert minted["urls"] == TURN_URLS
    assert valid(minted, SECRET, "alice") == 1_800_000_900 == expires
    assert static == {
        "urls": ["turns:static.example.org:5349"],
        "username": "meet",
        "credential": STATIC,
    }
    # Static credentials only: nothing minted, nothing to renew.
    ice = load_settings(overrides={"ice": {"servers": ice_section()["servers"][2:]}}).ice
    assert turn.participant_ice_servers(ice, "alice")[1] is None


def test_public_config_lists_stun_only() -> None:
    ice = load_settings(overrides={"ice": ice_section()}).ice
    assert turn.public_ice_servers(ice) == [{"urls": ["stun:turn.example.org:3478"]}]


def test_sfu_uses_its_own_list_with_its_own_credentials() -> None:
    # Unset: the browsers' list, with credentials minted for "sfu".
    config = rtc_configuration(load_settings(overrides={"ice": ice_section()}).ice)
    stun, minted, static = config.iceServers
    assert stun.urls == ["stun:turn.example.org:3478"] and stun.username is None
    assert valid({"username": minted.username, "credential": minted.credential}, SECRET, "sfu")
    assert (static.username, static.credential) == ("meet", STATIC)
    # Its own list.
    own = {"sfu_servers": [{"urls": ["turn:10.0.0.5:3478?transport=udp"]}]}
    (server,) = rtc_configuration(
        load_settings(overrides={"ice": ice_section(**own)}).ice
    ).iceServers
    assert server.urls == ["turn:10.0.0.5:3478?transport=udp"]
    assert valid({"username": server.username, "credential": server.credential}, SECRET, "sfu")
    # Empty: host candidates only, whatever the browsers get.
    none = rtc_configuration(load_settings(overrides={"ice": ice_section(sfu_servers=[])}).ice)
    assert none.iceServers == []


# -- settings ------------------------------------------------------------------------------
def test_turn_without_username_needs_the_secret() -> None:
    with pytest.raises(SettingsError, match=r"ice\.servers\[0\] is a turn:/turns: server"):
        load_settings(overrides={"ice": {"servers": [{"urls": TURN_URLS}]}})
    with pytest.raises(SettingsError, match=r"ice\.sfu_servers\[0\].*ice\.turn_secret"):
        load_settings(overrides={"ice": {"sfu_servers": [{"urls": "turns:t.example.org"}]}})
    with pytest.raises(SettingsError, match="username and credential go together"):
        load_settings(overrides={"ice": {"servers": [{"urls": TURN_URLS, "username": "u"}]}})
    # STUN needs nothing; with the secret, TURN needs nothing more either.
    load_settings(overrides={"ice": {"servers": [{"urls": "stun:s.example.org"}]}})
    load_settings(overrides={"ice": {"servers": [{"urls": TURN_URLS}], "turn_secret": SECRET}})


def test_config_set_takes_a_turn_entry_the_file_gives_a_secret() -> None:
    # `sfu config set` checks one key at a time; the secret is another key of the file.
    assert value_for("ice.servers", '[{urls = ["turn:t.example.org:3478"]}]') == [
        {"urls": ["turn:t.example.org:3478"]}
    ]


def test_credentials_load_from_toml_and_env(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "sfu.toml"
    path.write_text(
        f'[ice]\nturn_secret = "{SECRET}"\n[[ice.servers]]\nurls = "turn:t.example.org"\n'
        f'username = "meet"\ncredential = "{STATIC}"\n'
    )
    ice = load_settings(path).ice
    assert ice.servers[0].credential is not None
    assert ice.servers[0].credential.get_secret_value() == STATIC
    assert ice.turn_secret is not None and ice.turn_secret.get_secret_value() == SECRET
    servers = json.dumps([{"urls": "turn:t.example.org", "username": "m", "credential": "e"}])
    monkeypatch.setenv("SFU_ICE__SERVERS", servers)
    (server,) = load_settings().ice.servers
    assert server.credential is not None and server.credential.get_secret_value() == "e"


def test_flatten_masks_every_credential() -> None:
    shown = flatten(
        load_settings(overrides={"ice": ice_section(sfu_servers=ice_section()["servers"])})
    )
    text = json.dumps(shown)
    assert STATIC not in text and SECRET not in text
    assert shown["ice.turn_secret"] == "********"
    assert shown["ice.servers"][2] == {
        "urls": ["turns:static.example.org:5349"],
        "username": "meet",
        "credential": "********",
    }
    assert shown["ice.sfu_servers"][2]["credential"] == "********"
    assert shown["ice.servers"][1]["credential"] is None


def test_errors_never_echo_a_secret() -> None:
    for ice in (
        {"servers": [{"urls": "turn:t.example.org", "username": "m", "credential": 73914682}]},
        {"turn_secret": 73914682},
    ):
        with pytest.raises(SettingsError) as caught:
            load_settings(overrides={"ice": ice})
        assert "73914682" not in str(caught.value), caught.value
        assert "should be a valid string" in str(caught.value)


# -- a real server -------------------------------------------------------------------------
async def test_join_answer_carries_credentials_and_config_does_not(make_server) -> None:
    server = await make_server(ice=ice_section(), auth={"admin_token": TOKEN})
    client = await Client(server.url).connect()
    try:
        before = int(time.time())
        ack = await client.join("standup", "alice")
        stun, minted, static = ack["iceServers"]
        assert stun == {"urls": ["stun:turn.example.org:3478"]}
        expires = valid(minted, SECRET, "alice")
        assert before + 86400 <= expires <= int(time.time()) + 86400  # the default TTL
        assert static["credential"] == STATIC
        # Unauthenticated: no TURN server, no username, no credential.
        status, text = await request("GET", server.url + "/api/config")
        assert status == 200
        assert json.loads(text)["iceServers"] == [{"urls": ["stun:turn.example.org:3478"]}]
        assert STATIC not in text and SECRET not in text
        assert not re.search(r"turns?:|username|credential", text), text
        # Admin: masked.
        status, text = await request("GET", server.url + "/api/settings", **admin())
        assert status == 200 and "********" in text
        assert STATIC not in text and SECRET not in text
    finally:
        await client.close()


async def test_live_changes_keep_secrets_out_of_log_and_answers(
    make_server, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server(ice=ice_section(), auth={"admin_token": TOKEN})
    url = server.url + "/api/settings"
    caplog.set_level(logging.DEBUG)
    servers = [
        {"urls": ["turn:t2.example.org"], "username": "meet2", "credential": "new-Pass-71c3"}
    ]
    status, text = await request(
        "PATCH",
        url,
        json={"changes": {"ice.servers": servers, "ice.turn_secret": "rotated-Secret-2b8a"}},
        **admin(),
    )
    assert status == 200, text
    assert server.settings.ice.servers[0].credential is not None
    assert server.settings.ice.servers[0].credential.get_secret_value() == "new-Pass-71c3"
    assert "settings changed: ice.servers=" in caplog.text  # the line is there, masked
    for secret in ("new-Pass-71c3", "rotated-Secret-2b8a", STATIC, SECRET):
        assert secret not in text and secret not in caplog.text
    # Refused changes say why without the value.
    bad = {"ice.servers": [{"urls": "turn:t.example.org", "username": "m", "credential": 58213907}]}
    status, text = await request("PATCH", url, json={"changes": bad}, **admin())
    assert status == 400 and "invalid_setting" in text and "58213907" not in text
    # Taking the secret away while a turn: entry relies on it is refused, naming the entry.
    bare = {"ice.servers": [{"urls": TURN_URLS}]}
    assert (await request("PATCH", url, json={"changes": bare}, **admin()))[0] == 200
    status, text = await request(
        "PATCH", url, json={"changes": {"ice.turn_secret": None}}, **admin()
    )
    assert status == 400 and "ice.servers[0] is a turn:/turns: server" in text, text
    assert "58213907" not in caplog.text


async def test_minted_credentials_are_renewed_while_the_participant_stays(make_server) -> None:
    server = await make_server(ice=ice_section(turn_ttl_seconds=60))
    server.server.signaling.ice_renew_fraction = 1 / 60  # every second instead of every 48 s
    client = await Client(server.url).connect()
    try:
        ack = await client.join("long-meeting", "alice")
        first = valid(ack["iceServers"][1], SECRET, "alice")
        pushes = await client.wait_for("ice-servers", count=2, timeout=10)
        expiries = [valid(p["iceServers"][1], SECRET, "alice") for p in pushes]
        assert first <= expiries[0] < expiries[1], (first, expiries)
        assert all(p["iceServers"][2]["credential"] == STATIC for p in pushes)
        # Gone from the room: no more pushes.
        assert (await client.call("leave-room", {}))["ok"]
        count = len(client.received("ice-servers"))
        await asyncio.sleep(2.5)
        assert len(client.received("ice-servers")) == count
    finally:
        await client.close()


async def test_nothing_minted_nothing_pushed(make_server) -> None:
    static = {"servers": ice_section()["servers"][2:], "turn_ttl_seconds": 60}
    server = await make_server(ice=static)
    server.server.signaling.ice_renew_fraction = 1 / 60
    client = await Client(server.url).connect()
    try:
        ack = await client.join("static", "alice")
        assert ack["iceServers"][0]["credential"] == STATIC
        await asyncio.sleep(2.5)
        assert client.received("ice-servers") == []
    finally:
        await client.close()


async def test_a_rotated_secret_reaches_participants_at_once(make_server) -> None:
    server = await make_server(ice=ice_section(), auth={"admin_token": TOKEN})
    alice = await Client(server.url).connect()
    bob = await Client(server.url).connect()
    try:
        await alice.join("rotation", "alice")
        await bob.join("rotation", "bob", mode="sfu")
        changes = {"changes": {"ice.turn_secret": "rotated-Secret-2b8a"}}
        status, text = await request("PATCH", server.url + "/api/settings", json=changes, **admin())
        assert status == 200, text
        for client, user in ((alice, "alice"), (bob, "bob")):
            (push,) = await client.wait_for("ice-servers")
            valid(push["iceServers"][1], "rotated-Secret-2b8a", user)
    finally:
        await alice.close()
        await bob.close()
