"""The meeting room in the browser's language: a German browser (``locale="de-DE"``, no
``?lang=``) creates an SFU room on the start page and an English browser joins it. Alice's
page is German throughout (the page's language, the toolbar's accessible names, the chat, the
participants panel with its moderation controls, the shortcuts dialog, a toast, the tab's
title); Bob's, in the same meeting, stays English. Screenshot: test-output/room-de.png.

The tests share one room and run in file order, like one meeting.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import (
    OUTPUT_DIR,
    LaunchFn,
    Participant,
    Room,
    ServerProcess,
    wait_until,
)

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]


def create_room_in_german(launch: LaunchFn) -> tuple[Participant, str]:
    """Alice's German browser: the start page, an SFU room, the pre-join screen, Join."""
    alice = launch("Alice", path="/?raw_audio=1", locale="de-DE")
    page = alice.page
    expect(page.get_by_role("heading", level=1)).to_have_text("Besprechungen")
    page.get_by_label("Ihr Name").fill("Alice")
    page.get_by_label("Besprechung über den Server (SFU)").check()
    page.get_by_role("button", name="Raum erstellen").click()
    page.wait_for_url(re.compile(r"/room/[a-z-]+\?raw_audio=1$"))
    room_id = page.url.split("/room/")[1].split("?")[0]
    page.get_by_test_id("prejoin").wait_for()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Raum {room_id} beitreten")
    expect(page.get_by_test_id("prejoin-join")).to_have_text("Teilnehmen")
    page.get_by_test_id("prejoin-join").click()
    alice.wait_joined()
    return alice, room_id


@pytest.fixture(scope="module")
def room(e2e_server: ServerProcess, launch: LaunchFn) -> Iterator[Room]:
    alice, room_id = create_room_in_german(launch)
    bob = launch("Bob", room=room_id, locale="en-US")
    # Alice hears of him in German (a toast lives 5 s: waited for while he joins).
    alice.page.get_by_test_id("toast").filter(has_text="Bob ist beigetreten").wait_for()
    bob.wait_joined()
    yield Room(room_id, e2e_server, {"Alice": alice, "Bob": bob})


def test_the_german_browser_gets_a_german_room(netns: None, room: Room) -> None:
    page = room["Alice"].page
    assert page.evaluate("() => document.documentElement.lang") == "de"
    assert page.evaluate("() => navigator.language") == "de-DE"
    assert "lang=" not in page.url
    expect(page.get_by_test_id("mode-badge")).to_have_text("SFU")
    expect(page.get_by_test_id("room-name")).to_have_text(f"Raum {room.id}")
    assert page.title() == f"Raum {room.id} · Besprechung"
    expect(page.get_by_test_id("copy-link")).to_have_text("Link kopieren")
    expect(page.get_by_test_id("self-role")).to_have_text("Moderation")  # the first to join

    toolbar = page.get_by_role("toolbar", name="Besprechungssteuerung")
    expect(toolbar).to_be_visible()
    expect(page.get_by_test_id("toggle-mic")).to_have_accessible_name("Stummschalten")
    expect(page.get_by_test_id("toggle-camera")).to_have_accessible_name("Video beenden")
    expect(page.get_by_test_id("chat-button")).to_have_accessible_name("Chat")
    expect(page.get_by_test_id("participants-button")).to_have_accessible_name("Personen (2)")
    expect(page.get_by_test_id("leave-button")).to_have_accessible_name("Verlassen")
    expect(toolbar.get_by_role("button", name="Verlassen")).to_have_count(1)

    # A toggle's name follows its state, in German too.
    page.get_by_test_id("toggle-mic").click()
    expect(page.get_by_test_id("toggle-mic")).to_have_accessible_name("Stummschaltung aufheben")
    expect(room["Alice"].tile("Alice").get_by_test_id("mic-off")).to_have_accessible_name(
        "Mikrofon aus"
    )
    expect(room["Alice"].tile("Alice")).to_contain_text("Alice (Sie)")
    page.get_by_test_id("toggle-mic").click()
    expect(page.get_by_test_id("toggle-mic")).to_have_accessible_name("Stummschalten")
    expect(room["Alice"].tile("Bob").get_by_role("img", name="Mikrofon an")).to_be_visible()


def test_the_chat_panel_is_german(netns: None, room: Room) -> None:
    page = room["Alice"].page
    page.get_by_test_id("chat-button").click()
    panel = page.get_by_role("complementary", name="Chat")
    expect(panel.get_by_role("heading", level=2)).to_have_text("Chat")
    expect(panel.get_by_role("button", name="Chat schließen")).to_be_visible()
    field = panel.get_by_role("textbox", name="Nachricht")
    expect(field).to_have_attribute("placeholder", "Nachricht eingeben")
    expect(panel.get_by_role("button", name="Senden")).to_be_disabled()
    expect(panel.get_by_test_id("chat-list")).to_have_text("Noch keine Nachrichten.")
    field.fill("Hallo Bob")
    panel.get_by_role("button", name="Senden").click()
    expect(panel.get_by_test_id("chat-message")).to_contain_text("Hallo Bob")
    panel.get_by_role("button", name="Chat schließen").click()
    expect(panel).to_have_count(0)


def test_the_participants_panel_is_german(netns: None, room: Room) -> None:
    page = room["Alice"].page
    page.get_by_test_id("participants-button").click()
    panel = page.get_by_role("complementary", name="Teilnehmende")
    expect(panel.get_by_role("heading", level=2)).to_have_text("Teilnehmende (2)")
    expect(panel.get_by_role("button", name="Teilnehmerliste schließen")).to_be_visible()
    expect(panel.get_by_test_id("participant").filter(has_text="Alice")).to_contain_text(
        "Alice (Sie)"
    )
    # A moderator's controls, in German.
    expect(panel.get_by_test_id("lock-room")).to_have_text("Besprechung sperren")
    expect(panel.get_by_test_id("end-meeting")).to_have_text("Besprechung für alle beenden")
    bob = panel.locator('[data-testid=participant][data-name="Bob"]')
    expect(bob.get_by_test_id("make-moderator")).to_have_text("Zur Moderation machen")
    expect(bob.get_by_test_id("ask-mute-audio")).to_have_text("Stummschalten")
    expect(bob.get_by_test_id("remove-participant")).to_have_text("Entfernen")
    OUTPUT_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "room-de.png"))
    panel.get_by_role("button", name="Teilnehmerliste schließen").click()
    expect(panel).to_have_count(0)


def test_the_shortcuts_dialog_is_german(netns: None, room: Room) -> None:
    page = room["Alice"].page
    page.get_by_test_id("shortcuts-button").click()
    dialog = page.get_by_role("dialog", name="Tastenkürzel")
    expect(dialog).to_contain_text("Leertaste (halten)")
    expect(dialog).to_contain_text("Hand heben oder senken")
    dialog.get_by_role("button", name="Schließen").click()
    expect(dialog).to_have_count(0)


def test_the_english_browser_in_the_same_room_stays_english(netns: None, room: Room) -> None:
    bob = room["Bob"]
    page = bob.page
    assert page.evaluate("() => document.documentElement.lang") == "en"
    expect(page.get_by_test_id("room-name")).to_have_text(f"Room {room.id}")
    expect(page.get_by_role("toolbar", name="Meeting controls")).to_be_visible()
    expect(page.get_by_test_id("toggle-mic")).to_have_accessible_name("Mute")
    expect(page.get_by_test_id("leave-button")).to_have_accessible_name("Leave")
    expect(bob.tile("Bob")).to_contain_text("Bob (you)")

    # Alice's German message arrives as she wrote it, in an English panel.
    wait_until(
        lambda: page.get_by_test_id("chat-button").get_attribute("aria-label") == "Chat, 1 unread",
        what="Bob's unread count",
    )
    page.get_by_test_id("chat-button").click()
    panel = page.get_by_role("complementary", name="Chat")
    expect(panel.get_by_role("textbox", name="Message")).to_have_attribute(
        "placeholder", "Type a message"
    )
    expect(panel.get_by_test_id("chat-message")).to_contain_text("Hallo Bob")
    panel.get_by_role("button", name="Close chat").click()

    page.get_by_test_id("participants-button").click()
    people = page.get_by_role("complementary", name="Participants")
    expect(people.get_by_role("heading", level=2)).to_have_text("Participants (2)")
    expect(people.get_by_test_id("role-badge")).to_have_text("Moderator")  # Alice's
    expect(people.get_by_test_id("room-actions")).to_have_count(0)  # Bob moderates nothing
    people.get_by_role("button", name="Close participants").click()
