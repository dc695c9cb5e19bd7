"""States a user can be in, each with its own screen or banner (issue #18), in Chromium at a
laptop (1280x800) and a phone (390x844) size; screenshots go to ``test-output/``.

- a full meeting: its own page with "Try again", which joins once a seat is free;
- leaving: "You left the meeting" with Rejoin (back in, seen by the others) and the start page;
- the server unreachable (its process stopped with SIGSTOP, so pings go unanswered): a
  persistent banner while reconnecting, gone once it is back, with a "Reconnected" toast;
- the tab's title names the room and counts unread chat messages;
- raised hands: a badge with the place in line on the tile and in the participants list.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import (
    OUTPUT_DIR,
    LaunchFn,
    Participant,
    ServerProcess,
    assert_sees,
    close_launched,
    start_server,
    stop_server,
    wait_until,
)

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]

VIEWPORTS = {"laptop": (1280, 800), "phone": (390, 844)}


@pytest.fixture(scope="module")
def e2e_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Rooms of two (a third is refused ``room_full``); the default 5 s + 5 s pings."""
    server = start_server(
        tmp_path_factory.mktemp("states-server"), {"SFU_ROOMS__MAX_PARTICIPANTS": "2"}
    )
    yield server
    stop_server(server)


@pytest.fixture(autouse=True)
def _fresh_browsers(launch: LaunchFn) -> Iterator[None]:
    """Each test's participants leave with it (every test makes its own room)."""
    yield
    close_launched(launch)


def shot(p: Participant, name: str) -> None:
    OUTPUT_DIR.mkdir(exist_ok=True)
    p.page.screenshot(path=str(OUTPUT_DIR / f"states-{name}.png"))


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_full_meeting_page_and_try_again(
    netns: None, e2e_server: ServerProcess, launch: LaunchFn, size: str
) -> None:
    room_id = e2e_server.create_room("p2p")
    alice = launch("Alice", room=room_id, viewport=VIEWPORTS[size])
    alice.wait_joined()
    bob = launch("Bob", room=room_id, viewport=VIEWPORTS[size])
    bob.wait_joined()
    carol = launch("Carol", room=room_id, viewport=VIEWPORTS[size])
    page = carol.page.get_by_test_id("access-page")
    page.wait_for()
    assert page.get_attribute("data-reason") == "room_full"
    assert carol.page.get_by_test_id("access-page-title").inner_text() == "This meeting is full"
    assert carol.page.get_by_test_id("room").count() == 0  # no meeting behind it
    shot(carol, f"full-{size}")
    # Still full: trying again shows the same page.
    carol.page.get_by_test_id("access-retry").click()
    carol.page.get_by_test_id("access-page").wait_for()
    # Bob leaves: he sees his own page; Carol's next try takes his seat.
    bob.page.get_by_test_id("leave-button").click()
    bob.page.get_by_test_id("left-page").wait_for()
    shot(bob, f"left-{size}")
    alice.tile("Bob").wait_for(state="detached")
    carol.page.get_by_test_id("access-retry").click()
    carol.wait_joined()
    assert_sees(alice, "Carol")
    assert_sees(carol, "Alice")


def test_left_page_rejoin_and_home(
    netns: None, e2e_server: ServerProcess, launch: LaunchFn
) -> None:
    room_id = e2e_server.create_room("sfu")
    alice = launch("Alice", room=room_id)
    alice.wait_joined()
    bob = launch("Bob", room=room_id)
    bob.wait_joined()
    assert_sees(alice, "Bob")
    bob.page.get_by_test_id("leave-button").click()
    left = bob.page.get_by_test_id("left-page")
    left.wait_for()
    assert "You left the meeting" in left.inner_text()
    alice.tile("Bob").wait_for(state="detached")
    # Rejoin: the same room, camera and microphone again, seen by Alice.
    bob.page.get_by_test_id("rejoin-button").click()
    bob.wait_joined()
    assert_sees(alice, "Bob")
    assert_sees(bob, "Alice")
    bob.page.get_by_test_id("leave-button").click()
    bob.page.get_by_test_id("home-button").click()
    bob.page.wait_for_url(re.compile(r"/$"))
    alice.tile("Bob").wait_for(state="detached")


def test_server_unreachable_banner_and_tab_title(
    netns: None, e2e_server: ServerProcess, launch: LaunchFn
) -> None:
    room_id = e2e_server.create_room("p2p")
    alice = launch("Alice", room=room_id)
    alice.wait_joined()
    bob = launch("Bob", room=room_id)
    bob.wait_joined()
    assert alice.page.title() == f"Room {room_id} · Meeting"
    # A chat message while Alice's chat is closed: the title counts it.
    bob.page.get_by_test_id("chat-button").click()
    bob.page.get_by_label("Message").fill("hello")
    bob.page.get_by_label("Message").press("Enter")
    wait_until(lambda: alice.page.title() == f"(1) Room {room_id} · Meeting", what="unread title")
    alice.page.get_by_test_id("chat-button").click()
    wait_until(lambda: alice.page.title() == f"Room {room_id} · Meeting", what="title read")

    assert alice.page.get_by_test_id("connection-banner").count() == 0
    os.kill(e2e_server.proc.pid, signal.SIGSTOP)
    try:
        banner = alice.page.get_by_test_id("connection-banner")
        banner.wait_for(timeout=20_000)  # 5 s ping interval + 5 s timeout
        assert "Reconnecting" in banner.inner_text()
        shot(alice, "server-unreachable")
        alice.page.wait_for_timeout(3000)
        assert banner.is_visible()  # it stays while the server is away (not a toast)
    finally:
        os.kill(e2e_server.proc.pid, signal.SIGCONT)
    alice.page.get_by_test_id("connection-banner").wait_for(state="detached", timeout=30_000)
    alice.wait_joined()
    alice.page.get_by_text("Reconnected").first.wait_for()
    assert_sees(alice, "Bob")


def test_raised_hands_show_their_place_in_line(
    netns: None, e2e_server: ServerProcess, launch: LaunchFn
) -> None:
    room_id = e2e_server.create_room("p2p")
    alice = launch("Alice", room=room_id)
    alice.wait_joined()
    bob = launch("Bob", room=room_id)
    bob.wait_joined()
    bob.page.get_by_test_id("raise-hand").click()
    wait_until(
        lambda: bob.page.get_by_test_id("raise-hand").get_attribute("aria-label") == "Lower hand",
        what="Bob's button to say Lower hand",
    )  # once the server's answer is in
    badge = alice.tile("Bob").get_by_test_id("hand-badge")
    badge.wait_for()
    assert badge.inner_text().strip() == "✋ 1"
    alice.page.get_by_text("Bob raised their hand").first.wait_for()
    alice.page.get_by_test_id("raise-hand").click()
    bob.tile("Alice").get_by_test_id("hand-badge").wait_for()
    assert bob.tile("Alice").get_by_test_id("hand-badge").inner_text().strip() == "✋ 2"
    # The participants list puts raised hands first, in order.
    alice.page.get_by_test_id("participants-button").click()
    alice.page.get_by_test_id("participant-hand").nth(1).wait_for()
    names = alice.page.get_by_test_id("participant").evaluate_all(
        "(items) => items.map((li) => li.dataset.name)"
    )
    assert names == ["Bob", "Alice"], names
    shot(alice, "raised-hands")
    # Bob lowers his: Alice moves up to first.
    bob.page.get_by_test_id("raise-hand").click()
    alice.tile("Bob").get_by_test_id("hand-badge").wait_for(state="detached")
    wait_until(
        lambda: bob.tile("Alice").get_by_test_id("hand-badge").inner_text().strip() == "✋ 1",
        what="Alice first in line",
    )


def test_keyboard_shortcuts_and_chat_links(
    netns: None, e2e_server: ServerProcess, launch: LaunchFn
) -> None:
    room_id = e2e_server.create_room("p2p")
    alice = launch("Alice", room=room_id)
    alice.wait_joined()
    bob = launch("Bob", room=room_id)
    bob.wait_joined()
    assert_sees(bob, "Alice")
    seen = bob.tile("Alice")
    keyboard = alice.page.keyboard
    alice.page.locator("body").click(position={"x": 5, "y": 5})  # focus the page, no control

    def state(attr: str, want: str) -> None:
        wait_until(lambda: seen.get_attribute(attr) == want, what=f"Bob to see Alice {attr}={want}")

    keyboard.press("m")  # mute
    state("data-audio", "off")
    keyboard.down(" ")  # push to talk while held
    state("data-audio", "on")
    keyboard.up(" ")
    state("data-audio", "off")
    keyboard.press("Control+d")  # Meet's unmute
    state("data-audio", "on")
    keyboard.press("v")
    state("data-video", "off")
    keyboard.press("v")
    state("data-video", "on")
    keyboard.press("h")
    seen.get_by_test_id("hand-badge").wait_for()
    keyboard.press("?")
    help_dialog = alice.page.get_by_test_id("shortcuts-help")
    help_dialog.wait_for()
    assert "Push to talk" in help_dialog.inner_text()
    shot(alice, "shortcuts")
    keyboard.press("Escape")
    help_dialog.wait_for(state="detached")

    # Typing in the chat is typing, not shortcuts; a link in a message is a link.
    alice.page.get_by_test_id("chat-button").click()
    box = alice.page.get_by_label("Message")
    box.fill("")
    box.press_sequentially("mvh see https://example.test/notes?id=7.")
    box.press("Enter")
    link = bob.page.get_by_test_id("chat-button")
    link.click()
    anchor = bob.page.get_by_test_id("chat-link")
    anchor.wait_for()
    assert anchor.get_attribute("href") == "https://example.test/notes?id=7"
    assert anchor.get_attribute("target") == "_blank"
    assert "noopener" in (anchor.get_attribute("rel") or "")
    assert seen.get_attribute("data-audio") == "on" and seen.get_attribute("data-video") == "on"
    assert seen.get_by_test_id("hand-badge").count() == 1  # "h" typed in the box changed nothing
