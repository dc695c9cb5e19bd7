"""An SFU room in real Chromium: three participants, a late fourth, a screen share, a leaver.

The tests share one room and run in file order, like one meeting. Every browser holds two
connections with the server (publish and subscribe), none with the other browsers; the
server forwards encoded media and never runs an encoder to do so (``forwardingEncodes``).
Colours (y4m) and tones (WAV) of each persona tell whose media arrived where.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import (
    OUTPUT_DIR,
    LaunchFn,
    Participant,
    Room,
    ServerProcess,
    assert_gets_screen,
    assert_hears,
    assert_sees,
    create_room_on_start_page,
    wait_until,
)

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]

BOTH_CONNECTED = {"publish": "connected", "subscribe": "connected"}


@pytest.fixture(scope="module")
def room(e2e_server: ServerProcess, launch: LaunchFn) -> Iterator[Room]:
    # Alice creates an SFU room on the start page; Bob and Carol open its URL.
    alice, room_id = create_room_on_start_page(launch, "SFU")
    people = {"Alice": alice}
    for name in ("Bob", "Carol"):
        people[name] = launch(name, room=room_id)
        people[name].wait_joined()
    yield Room(room_id, e2e_server, people)


def connections(p: Participant) -> dict[str, str]:
    return {x["userId"]: x["connectionState"] for x in p.peers()}


def wait_media(room: Room, check: Any, what: str) -> dict[str, Any]:
    return wait_until(lambda: (lambda m: m if check(m) else None)(room.media()), what=what)


def test_three_participants_see_each_other(netns: None, room: Room) -> None:
    for viewer in room.people.values():
        assert viewer.page.get_by_test_id("mode-badge").inner_text() == "SFU"
        for other in room.others(viewer.name):
            assert_sees(viewer, other.name)
        # Two connections with the server, none with the other browsers.
        wait_until(
            lambda v=viewer: connections(v) == BOTH_CONNECTED,
            what=f"{viewer.name}'s publish and subscribe connections",
        )
    # The server: 3 publishers x (audio + video) producers, each forwarded to 2 others,
    # frames flowing, and not one encoder run to forward them.
    media = wait_media(
        room,
        lambda m: len(m["producers"]) == 6 and m["consumers"] == 12,
        "6 producers with 12 consumers",
    )
    assert media["participants"] == 3 and media["connections"] == 6
    assert media["forwardedFrames"] > 0
    assert media["forwardingEncodes"] == 0
    assert all(c["sending"] for c in media["consumerList"]), media["consumerList"]
    OUTPUT_DIR.mkdir(exist_ok=True)
    room["Alice"].page.screenshot(path=str(OUTPUT_DIR / "sfu-three-person-room.png"))


def test_three_participants_hear_each_other(netns: None, room: Room) -> None:
    for listener in room.people.values():
        for other in room.others(listener.name):
            assert_hears(listener, other.name)
        # The speaking indicator lights for the others' tones.
        for other in room.others(listener.name):
            listener.page.wait_for_selector(
                f'[data-testid=video-tile][data-name="{other.name}"][data-speaking="yes"]'
            )


def test_chat_emoji_and_mute_work_as_in_p2p(netns: None, room: Room) -> None:
    alice, bob, carol = room["Alice"], room["Bob"], room["Carol"]
    alice.page.get_by_test_id("chat-button").click()
    alice.page.get_by_label("Message").fill("hello SFU")
    alice.page.get_by_role("button", name="Send").click()
    for p in (bob, carol):
        p.page.wait_for_selector('[data-testid=unread-count]:has-text("1")')
    alice.page.get_by_test_id("chat-button").click()

    carol.page.get_by_test_id("emoji-button").click()
    carol.page.get_by_role("menuitem", name="React 🎉").click()
    for p in room.people.values():
        p.tile("Carol").get_by_test_id("floating-emoji").first.wait_for(timeout=10_000)

    bob.page.get_by_test_id("toggle-mic").click()
    for p in room.others("Bob"):
        p.page.wait_for_selector('[data-testid=video-tile][data-name="Bob"][data-audio="off"]')
    bob.page.get_by_test_id("toggle-mic").click()
    for p in room.others("Bob"):
        p.page.wait_for_selector('[data-testid=video-tile][data-name="Bob"][data-audio="on"]')


def test_late_joiner_sees_and_hears_everyone(netns: None, room: Room, launch: LaunchFn) -> None:
    dave = launch("Dave", room=room.id)
    dave.wait_joined()
    room.people["Dave"] = dave
    for name in ("Alice", "Bob", "Carol"):
        assert_sees(dave, name)
        assert_sees(room[name], "Dave")
    assert_hears(dave, "Alice")
    assert_hears(room["Carol"], "Dave")
    wait_until(lambda: connections(dave) == BOTH_CONNECTED, what="Dave's two connections")
    media = wait_media(
        room,
        lambda m: len(m["producers"]) == 8 and m["consumers"] == 24,
        "8 producers with 24 consumers",
    )
    assert media["participants"] == 4 and media["forwardingEncodes"] == 0


def test_screen_share_reaches_everyone(netns: None, room: Room) -> None:
    carol = room["Carol"]
    carol.page.get_by_test_id("toggle-screen").click()
    carol.page.get_by_test_id("screen-share-warning").wait_for()
    for p in room.others("Carol"):
        assert_gets_screen(p, "Carol")
    sources = {(x["userId"], x["source"]) for x in room.media()["producers"]}
    assert (carol.user_id(), "screen") in sources
    carol.page.get_by_test_id("toggle-screen").click()
    for p in room.others("Carol"):
        p.page.wait_for_selector('[data-testid=video-tile][data-name="Carol"][data-screen="off"]')
        assert_sees(p, "Carol")


def test_leaver_disappears_and_leaves_nothing_on_the_server(netns: None, room: Room) -> None:
    bob = room.people.pop("Bob")
    bob_id = bob.user_id()
    bob.page.get_by_test_id("leave-button").click()
    bob.page.get_by_test_id("left-page").wait_for()  # "You left the meeting" (#18)
    for p in room.people.values():
        p.tile("Bob").wait_for(state="detached")
        assert p.page.locator('video[aria-label="Bob"]').count() == 0
        assert connections(p) == BOTH_CONNECTED
    media = wait_media(
        room,
        lambda m: m["participants"] == 3 and m["consumers"] == 12,
        "Bob's producers and consumers gone",
    )
    assert media["connections"] == 6
    assert all(x["userId"] != bob_id for x in media["producers"])
    # The others still see each other.
    for viewer in room.people.values():
        for other in room.others(viewer.name):
            assert_sees(viewer, other.name)
