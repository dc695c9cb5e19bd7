"""Access control in the app, end to end with Chromium: a password-protected room, a token
link, the lobby of a locked room, a moderator's mute and removal, the moderator hand-over
during a recording, the Record button only for those who may record, and an unknown room
when rooms are not created on join.

Servers here have settings of their own (a join-token secret; ``create_on_join = false``),
so this module starts them itself and launches browsers against them.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.e2e.conftest import (
    CHROMIUM,
    PERSONAS,
    TIMEOUT_MS,
    Participant,
    ServerProcess,
    assert_hears,
    chromium_args,
    join_from_prejoin,
    media_files,
    start_server,
    stop_server,
    wait_until,
)

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]

SECRET = "e2e-join-token-secret-0123456789abcdef"

Launch = Callable[..., Participant]


def mint(
    room: str, sub: str, name: str, grants: dict[str, Any] | None = None, ttl: int = 600
) -> str:
    """A join token as an operator's application would sign it (PyJWT, HS256)."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "name": name, "room": room, "iat": now, "exp": now + ttl}
    if grants is not None:
        claims["grants"] = grants
    return jwt.encode(claims, SECRET, algorithm="HS256")


def launcher(
    playwright_instance: Any, server: ServerProcess, media_dir: Path
) -> tuple[Launch, list[Participant]]:
    made: list[Participant] = []

    def start(name: str, path: str) -> Participant:
        video, audio = media_files(media_dir, PERSONAS[name])
        browser = playwright_instance.chromium.launch(
            executable_path=CHROMIUM, args=chromium_args(video, audio)
        )
        context = browser.new_context(
            permissions=["camera", "microphone"],
            viewport={"width": 1100, "height": 700},
            base_url=server.url,
        )
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        p = Participant(PERSONAS[name], browser, context, page)
        page.on("console", lambda msg: p.console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda err: p.console.append(f"pageerror: {err}"))
        made.append(p)
        page.goto(path)
        return p

    return start, made


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    s = start_server(
        tmp_path_factory.mktemp("access-server"),
        env_overrides={"SFU_AUTH__TOKEN_SECRET": SECRET, "SFU_RECORDING__FPS": "15"},
    )
    yield s
    stop_server(s)


@pytest.fixture
def launch(playwright_instance: Any, server: ServerProcess, media_dir: Path) -> Iterator[Launch]:
    """Browsers of one test, closed at its end."""
    start, made = launcher(playwright_instance, server, media_dir)
    yield start
    for p in made:
        p.close()


def room_path(room: str, name: str) -> str:
    return f"/room/{room}?name={name}&raw_audio=1"


def open_people(p: Participant) -> None:
    if not p.page.locator("[aria-label=Participants]").count():
        p.page.get_by_test_id("participants-button").click()


def row(p: Participant, name: str) -> Any:
    return p.page.locator(f'[data-testid=participant][data-name="{name}"]')


def toast(p: Participant, text: str) -> None:
    p.page.locator("[data-testid=toast]", has_text=text).first.wait_for()


def fresh_room(server: ServerProcess, mode: str = "p2p") -> str:
    return server.create_room(mode)


# -- passwords -------------------------------------------------------------------------------
def test_password_room_wrong_then_right(netns: None, server: ServerProcess, launch: Launch) -> None:
    # Alice makes a room with a password on the start page and is let in with it.
    alice = launch("Alice", "/?raw_audio=1")
    alice.page.get_by_label("Your name").fill("Alice")
    alice.page.get_by_test_id("create-password").fill("open sesame")
    alice.page.get_by_role("button", name="Create room").click()
    alice.page.wait_for_url(re.compile(r"/room/[a-z-]+\?raw_audio=1$"))
    join_from_prejoin(alice)
    room = alice.page.url.split("/room/")[1].split("?")[0]
    assert "sesame" not in alice.page.url

    # Bob's link has no password: the app asks for one before joining.
    bob = launch("Bob", room_path(room, "Bob"))
    bob.page.get_by_test_id("password-prompt").wait_for()
    assert bob.page.get_by_test_id("room").count() == 0
    bob.page.get_by_test_id("password-input").fill("open sesamo")
    bob.page.get_by_test_id("password-submit").click()
    error = bob.page.get_by_test_id("password-error")
    error.wait_for()
    assert error.get_attribute("data-error") == "wrong_password"
    assert "Wrong password" in error.inner_text()
    assert alice.tile("Bob").count() == 0

    bob.page.get_by_test_id("password-input").fill("open sesame")
    bob.page.get_by_test_id("password-submit").click()
    bob.wait_joined()
    alice.tile("Bob").wait_for()
    bob.tile("Alice").wait_for()


# -- tokens ----------------------------------------------------------------------------------
def test_token_link_joins_with_the_tokens_name(
    netns: None, server: ServerProcess, launch: Launch
) -> None:
    room = fresh_room(server)
    alice = launch("Alice", room_path(room, "Alice"))
    alice.wait_joined()
    token = mint(room, "carol-from-crm", "Carol Token")
    carol = launch("Carol", f"/room/{room}?token={urllib.parse.quote(token)}&raw_audio=1")
    carol.wait_joined()
    # No name prompt; the token is gone from the address bar and the history entry.
    assert "token" not in carol.page.url, carol.page.url
    assert carol.page.url.endswith(f"/room/{room}?raw_audio=1")
    assert carol.user_id() == "carol-from-crm"
    carol.tile("Carol Token").wait_for()
    alice.tile("Carol Token").wait_for()
    # A token for another room is refused with its own page.
    other = launch("Dave", f"/room/{room}?token={mint('elsewhere', 'dave', 'Dave')}")
    page = other.page.get_by_test_id("access-page")
    page.wait_for()
    assert page.get_attribute("data-reason") == "invalid_token"
    assert "token" not in other.page.url


def test_token_without_record_sees_no_record_button(
    netns: None, server: ServerProcess, launch: Launch
) -> None:
    room = fresh_room(server, "sfu")
    alice = launch("Alice", room_path(room, "Alice"))
    alice.wait_joined()
    alice.page.get_by_test_id("server-record-button").wait_for()  # the moderator may record
    plain = mint(room, "dave", "Dave", {"record": False})
    dave = launch("Dave", f"/room/{room}?token={plain}&raw_audio=1")
    dave.wait_joined()
    dave.page.get_by_test_id("record-button").wait_for()  # the local recorder is still there
    assert dave.page.get_by_test_id("server-record-button").count() == 0
    recorder = mint(room, "bob", "Bob", {"record": True})
    bob = launch("Bob", f"/room/{room}?token={recorder}&raw_audio=1")
    bob.wait_joined()
    bob.page.get_by_test_id("server-record-button").wait_for()


# -- the lobby -------------------------------------------------------------------------------
def test_locked_room_knock_and_admit(netns: None, server: ServerProcess, launch: Launch) -> None:
    room = fresh_room(server)
    alice = launch("Alice", room_path(room, "Alice"))
    alice.wait_joined()
    alice.page.get_by_test_id("self-role").wait_for()
    open_people(alice)
    alice.page.get_by_test_id("lock-room").click()
    alice.page.get_by_test_id("locked-badge").wait_for()

    bob = launch("Bob", room_path(room, "Bob"))
    bob.page.get_by_test_id("lobby-waiting").wait_for()
    assert "Waiting for a moderator to let you in" in bob.page.inner_text("body")
    knock = alice.page.locator('[data-testid=lobby-request][data-name="Bob"]')
    knock.wait_for()
    assert alice.tile("Bob").count() == 0
    knock.get_by_test_id("lobby-admit").click()
    bob.wait_joined()
    alice.tile("Bob").wait_for()
    knock.wait_for(state="detached")
    bob.page.get_by_test_id("locked-badge").wait_for()

    # A second knock, denied: the newcomer is told so.
    carol = launch("Carol", room_path(room, "Carol"))
    carol.page.get_by_test_id("lobby-waiting").wait_for()
    alice.page.locator('[data-testid=lobby-request][data-name="Carol"]').get_by_test_id(
        "lobby-deny"
    ).click()
    page = carol.page.get_by_test_id("access-page")
    page.wait_for()
    assert page.get_attribute("data-reason") == "lobby-denied"
    assert "did not let you in" in carol.page.get_by_test_id("access-page-text").inner_text()


# -- moderation ------------------------------------------------------------------------------
def test_moderator_mutes_one_and_removes_another(
    netns: None, server: ServerProcess, launch: Launch
) -> None:
    room = fresh_room(server)
    alice = launch("Alice", room_path(room, "Alice"))
    alice.wait_joined()
    bob = launch("Bob", room_path(room, "Bob"))
    bob.wait_joined()
    carol = launch("Carol", room_path(room, "Carol"))
    carol.wait_joined()
    assert_hears(carol, "Bob")

    open_people(alice)
    assert row(alice, "Alice").get_attribute("data-role") == "moderator"
    row(alice, "Bob").get_by_test_id("ask-mute-audio").click()
    # Bob's app muted itself and says who asked.
    mic = bob.page.get_by_test_id("toggle-mic")
    wait_until(
        lambda: mic.get_attribute("aria-pressed") == "true", what="Bob's mic button to show muted"
    )
    toast(bob, "Alice muted you")
    enabled = bob.eval(
        "() => [...document.querySelectorAll('video[data-local=yes]')]"
        ".flatMap(v => v.srcObject ? v.srcObject.getAudioTracks() : []).map(t => t.enabled)"
    )
    assert enabled and not any(enabled), enabled
    # ... and the others hear silence from him.
    wait_until(
        lambda: (peak := carol.audio_peak("Bob")) is not None and peak["db"] < -90,
        timeout=15,
        what="Carol to hear silence from Bob",
    )
    toast(carol, "Alice muted Bob")

    # Removal with a reason: Carol sees why, and cannot come back for now.
    open_people(alice)
    row(alice, "Carol").get_by_test_id("remove-participant").click()
    row(alice, "Carol").get_by_test_id("remove-reason").fill("Testing the removal")
    row(alice, "Carol").get_by_test_id("remove-confirm").click()
    page = carol.page.get_by_test_id("access-page")
    page.wait_for()
    assert page.get_attribute("data-reason") == "removed"
    assert (
        carol.page.get_by_test_id("access-page-text").inner_text()
        == "Alice removed you from the meeting: Testing the removal"
    )
    alice.tile("Carol").wait_for(state="detached")
    carol.page.reload()
    carol.page.get_by_test_id("access-page").wait_for()
    assert carol.page.get_by_test_id("access-page").get_attribute("data-reason") == "removed"
    assert bob.tile("Carol").count() == 0


def test_last_moderator_leaves_during_recording(
    netns: None, server: ServerProcess, launch: Launch
) -> None:
    room = fresh_room(server, "sfu")
    alice = launch("Alice", room_path(room, "Alice"))
    alice.wait_joined()
    bob = launch("Bob", room_path(room, "Bob"))
    bob.wait_joined()
    assert bob.page.get_by_test_id("server-record-button").count() == 0  # no record grant

    alice.page.get_by_test_id("server-record-button").click()
    bob.page.get_by_test_id("rec-indicator").wait_for()

    # A joiner of a recorded room is asked before any media is sent.
    carol = launch("Carol", room_path(room, "Carol"))
    consent = carol.page.get_by_test_id("recording-consent")
    consent.wait_for()
    assert "Alice started the recording" in consent.inner_text()
    assert carol.eval("() => window.__sfuDebug.peers().length") == 0
    carol.page.get_by_test_id("consent-join-muted").click()
    carol.wait_joined()
    assert carol.page.get_by_test_id("toggle-mic").get_attribute("aria-pressed") == "true"
    assert carol.page.get_by_test_id("toggle-camera").get_attribute("aria-pressed") == "true"

    # Alice leaves: Bob, the longest present, becomes the moderator and stops the recording.
    alice.page.get_by_test_id("leave-button").click()
    toast(bob, "You are now a moderator")
    bob.page.get_by_test_id("self-role").wait_for()
    button = bob.page.get_by_test_id("server-record-button")
    button.wait_for()
    assert button.get_attribute("aria-label") == "Stop recording"  # an icon button (#18)
    button.click()
    for p in (bob, carol):
        p.page.get_by_test_id("rec-indicator").wait_for(state="detached", timeout=40_000)
    assert carol.page.get_by_test_id("server-record-button").count() == 0


# -- unknown rooms ---------------------------------------------------------------------------
def test_unknown_room_does_not_exist(
    netns: None, playwright_instance: Any, media_dir: Path, tmp_path: Path
) -> None:
    strict = start_server(tmp_path, env_overrides={"SFU_ROOMS__CREATE_ON_JOIN": "false"})
    start, made = launcher(playwright_instance, strict, media_dir)
    try:
        dave = start("Dave", room_path("no-such-meeting", "Dave"))
        page = dave.page.get_by_test_id("access-page")
        page.wait_for()
        assert page.get_attribute("data-reason") == "unknown_room"
        assert (
            dave.page.get_by_test_id("access-page-title").inner_text()
            == "This meeting does not exist"
        )
        assert dave.page.get_by_test_id("room").count() == 0
        dave.page.get_by_test_id("access-home-link").click()
        dave.page.wait_for_url(re.compile(r"/$"))
        # The start page still makes meetings (POST /api/rooms).
        dave.page.get_by_label("Your name").fill("Dave")
        dave.page.get_by_role("button", name="Create room").click()
        join_from_prejoin(dave)
    finally:
        for p in made:
            p.close()
        stop_server(strict)
