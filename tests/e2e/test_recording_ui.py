"""Server recording from the browser in an SFU room: the Record button, the REC indicator for
everyone, no Record button for a non-moderator, and the recordings page with the room token.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import LaunchFn, Participant, ServerProcess, wait_until

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]


def list_recordings(server: ServerProcess, token: str) -> list[dict]:
    req = urllib.request.Request(f"{server.url}/api/recordings")
    req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())["recordings"]


def room_token(p: Participant) -> str:
    link = p.page.get_by_test_id("recordings-link")
    link.wait_for()
    href = link.get_attribute("href") or ""
    token = urllib.parse.parse_qs(urllib.parse.urlparse(href).query).get("token", [""])[0]
    assert token, href
    return token


@pytest.fixture(scope="module")
def people(
    e2e_server: ServerProcess, launch: LaunchFn
) -> Iterator[tuple[str, Participant, Participant]]:
    room_id = e2e_server.create_room("sfu")
    alice = launch("Alice", room=room_id)
    alice.wait_joined()  # the first joiner is the room's creator
    bob = launch("Bob", room=room_id)
    bob.wait_joined()
    yield room_id, alice, bob


def test_record_stop_and_list(netns: None, e2e_server: ServerProcess, people) -> None:
    room_id, alice, bob = people
    token = room_token(alice)
    assert room_token(bob) == token
    for p in (alice, bob):
        assert p.page.get_by_test_id("rec-indicator").count() == 0

    # Bob is not a moderator: the app shows him no Record button (the server's forbidden
    # answer is tested at the Socket.IO level).
    alice.page.get_by_test_id("server-record-button").wait_for()
    assert bob.page.get_by_test_id("server-record-button").count() == 0

    alice.page.get_by_test_id("server-record-button").click()
    for p in (alice, bob):
        p.page.get_by_test_id("rec-indicator").wait_for()
        p.page.locator("[data-testid=toast]", has_text="Recording started").wait_for()
    alice.page.wait_for_timeout(3000)

    alice.page.get_by_test_id("server-record-button").click()
    for p in (alice, bob):
        p.page.get_by_test_id("rec-indicator").wait_for(state="detached")
        p.page.locator("[data-testid=toast]", has_text="Recording stopped").wait_for()

    recs = wait_until(
        lambda: [r for r in list_recordings(e2e_server, token) if r.get("state") != "recording"],
        what="one finished recording listed with the room token",
    )
    assert len(recs) == 1, recs
    assert recs[0]["room"] == room_id


def test_recordings_page_plays_and_links(netns: None, e2e_server: ServerProcess, people) -> None:
    _, alice, _ = people
    token = room_token(alice)
    page = alice.context.new_page()
    try:
        page.goto(f"/recordings?token={urllib.parse.quote(token)}")
        items = page.get_by_test_id("recording-item")
        items.first.wait_for()
        assert items.count() == 1
        href = page.get_by_test_id("recording-file-link").get_attribute("href") or ""
        assert "/file?token=" in href
        status = page.evaluate(
            "u => fetch(u, {headers: {Range: 'bytes=0-99'}}).then(r => r.status)", href
        )
        assert status in (200, 206)
        page.get_by_test_id("recording-play").click()
        video = page.get_by_test_id("recording-video")
        video.wait_for()
        wait_until(
            lambda: page.evaluate(
                "() => { const v = document.querySelector('[data-testid=recording-video]');"
                " return v && v.readyState >= 1 && v.duration > 0 }"
            ),
            timeout=20,
            what="the recording to load in the <video>",
        )
        # Without a token the page says a link with one is needed.
        page.goto("/recordings")
        page.get_by_test_id("recordings-error").wait_for()
    finally:
        page.close()
