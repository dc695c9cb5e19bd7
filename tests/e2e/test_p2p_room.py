"""A P2P room in real Chromium: three (then four) participants, each its own browser process.

The tests of this module share one room and run in file order, like one meeting:
Alice creates the room on the start page, Bob opens the room URL with ``?name=``, Carol opens
the shared URL and types her name. Every participant sends a solid colour and a tone of its
own (see conftest.PERSONAS), so pixels and frequencies tell whose media arrived where.
"""

from __future__ import annotations

import base64
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
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


@pytest.fixture(scope="module")
def room(e2e_server: ServerProcess, launch: LaunchFn) -> Iterator[Room]:
    # Alice: the start page, P2P mode, "Create room".
    alice, room_id = create_room_on_start_page(launch, "P2P")

    # Bob: the room URL with his name joins at once.
    bob = launch("Bob", room=room_id)
    bob.wait_joined()

    # Carol: the shared URL (no name) asks for a name first.
    carol = launch("Carol", path=f"/room/{room_id}?raw_audio=1")
    carol.page.get_by_label("Your name").fill("Carol")
    carol.page.get_by_role("button", name="Join").click()
    carol.wait_joined()
    yield Room(room_id, e2e_server, {"Alice": alice, "Bob": bob, "Carol": carol})


def connected_peers(p: Participant) -> set[str]:
    return {x["userId"] for x in p.peers() if x["connectionState"] == "connected"}


def test_three_participants_see_each_other(netns: None, room: Room) -> None:
    for viewer in room.people.values():
        for other in room.others(viewer.name):
            assert_sees(viewer, other.name)
        # a full mesh: two connected peer connections each
        wait_until(lambda v=viewer: len(connected_peers(v)) == 2, what=f"{viewer.name}'s 2 peers")
        # own preview: mirrored and muted, and the badge says P2P
        own = viewer.page.locator(f'video[aria-label="{viewer.name}"]')
        assert "mirrored" in (own.get_attribute("class") or "")
        assert own.evaluate("v => v.muted") is True
        assert viewer.page.get_by_test_id("mode-badge").inner_text() == "P2P"
    assert room["Alice"].page.url.endswith(f"/room/{room.id}?raw_audio=1")  # a link to share


def test_screenshot_of_three_person_room(netns: None, room: Room) -> None:
    OUTPUT_DIR.mkdir(exist_ok=True)
    path = OUTPUT_DIR / "p2p-three-person-room.png"
    room["Alice"].page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000


def test_three_participants_hear_each_other(netns: None, room: Room) -> None:
    for listener in room.people.values():
        for other in room.others(listener.name):
            assert_hears(listener, other.name)
        # the speaking indicator (WebAudio level of each remote stream) is lit for the tones
        for other in room.others(listener.name):
            listener.page.wait_for_selector(
                f'[data-testid=video-tile][data-name="{other.name}"][data-speaking="yes"]'
            )
        stats = listener.stats()
        energies = [s["audio"]["totalAudioEnergy"] for s in stats.values() if s.get("audio")]
        assert len(energies) == 2 and all(e > 0 for e in energies), stats


def test_chat_reaches_everyone_as_text(netns: None, room: Room) -> None:
    bob, alice, carol = room["Bob"], room["Alice"], room["Carol"]
    bob.page.get_by_test_id("chat-button").click()
    text = "Hello from Bob <b>not bold</b>"
    bob.page.get_by_label("Message").fill(text)
    bob.page.get_by_role("button", name="Send").click()
    for p in (alice, carol):
        p.page.wait_for_selector('[data-testid=unread-count]:has-text("1")')
    alice.page.get_by_test_id("chat-button").click()
    msg = alice.page.get_by_test_id("chat-message").filter(has_text="Hello from Bob")
    msg.wait_for()
    assert text in msg.inner_text()
    assert alice.page.locator("[data-testid=chat-list] b").count() == 0  # rendered as text
    assert alice.page.get_by_test_id("unread-count").count() == 0
    # closing Bob's panel again keeps the later tests' screens simple
    bob.page.get_by_test_id("chat-button").click()
    alice.page.get_by_test_id("chat-button").click()


def test_emoji_floats_over_the_senders_tile_for_everyone(netns: None, room: Room) -> None:
    carol = room["Carol"]
    carol.page.get_by_test_id("emoji-button").click()
    carol.page.get_by_role("menuitem", name="React 🎉").click()
    for p in room.people.values():
        floating = p.tile("Carol").get_by_test_id("floating-emoji")
        floating.first.wait_for(timeout=10_000)
        assert floating.first.inner_text() == "🎉"
    OUTPUT_DIR.mkdir(exist_ok=True)
    room["Bob"].page.get_by_test_id("participants-button").click()
    room["Bob"].page.screenshot(path=str(OUTPUT_DIR / "p2p-reaction-and-participants.png"))
    room["Bob"].page.get_by_test_id("participants-button").click()


def test_mute_shows_on_the_others_tiles(netns: None, room: Room) -> None:
    bob = room["Bob"]
    bob.page.get_by_test_id("toggle-mic").click()
    for p in room.others("Bob"):
        p.page.wait_for_selector('[data-testid=video-tile][data-name="Bob"][data-audio="off"]')
        assert p.tile("Bob").get_by_test_id("mic-off").count() == 1
    bob.page.get_by_test_id("toggle-mic").click()
    for p in room.others("Bob"):
        p.page.wait_for_selector('[data-testid=video-tile][data-name="Bob"][data-audio="on"]')


def test_screen_share_reaches_the_others(netns: None, room: Room) -> None:
    """Headless Chromium with --use-fake-ui-for-media-stream and --use-fake-device-for-media-stream
    answers getDisplayMedia with a fake *entire screen* (displaySurface 'monitor', 16:9), so the
    mirror warning shows too. The shared track replaces Alice's camera track in every sender."""
    alice = room["Alice"]
    alice.page.get_by_test_id("toggle-screen").click()
    alice.page.get_by_test_id("screen-share-warning").wait_for()
    own_video = alice.page.locator('video[aria-label="Alice"]')
    assert "mirrored" not in (own_video.get_attribute("class") or "")
    for p in room.others("Alice"):
        assert_gets_screen(p, "Alice")
    # Stopping restores the camera for everyone.
    alice.page.get_by_test_id("toggle-screen").click()
    assert alice.page.get_by_test_id("screen-share-warning").count() == 0
    for p in room.others("Alice"):
        p.page.wait_for_selector('[data-testid=video-tile][data-name="Alice"][data-screen="off"]')
        assert_sees(p, "Alice")
    # So does the browser's own "Stop sharing" (the track's 'ended' event).
    alice.page.get_by_test_id("toggle-screen").click()
    for p in room.others("Alice"):
        p.page.wait_for_selector('[data-testid=video-tile][data-name="Alice"][data-screen="on"]')
    alice.eval("() => window.__sfuDebug.endScreenShareFromBrowser()")
    alice.page.locator('[data-testid=toggle-screen][aria-label="Share screen"]').wait_for()
    for p in room.others("Alice"):
        p.page.wait_for_selector('[data-testid=video-tile][data-name="Alice"][data-screen="off"]')
        assert_sees(p, "Alice")


def assert_meets_everyone_again(room: Room, name: str) -> None:
    """After a rejoin: both ways, the pictures flow, and every other peer has 2 peers again."""
    back = room[name]
    for p in room.others(name):
        assert_sees(p, name)
        assert_sees(back, p.name)
        wait_until(lambda p=p: len(connected_peers(p)) == 2, what=f"{p.name}'s 2 peers")


def test_reconnect_after_a_network_blip_rejoins_as_the_same_user(netns: None, room: Room) -> None:
    carol = room["Carol"]
    before = carol.user_id()
    carol.eval("() => window.__sfuDebug.simulateNetworkBlip()")
    carol.page.get_by_text("Reconnected").wait_for()
    carol.wait_joined()
    assert carol.user_id() == before
    assert_meets_everyone_again(room, "Carol")


def test_silent_drop_rejoins_at_once_with_the_rejoin_token(
    netns: None, room: Room, e2e_server: ServerProcess
) -> None:
    """The network vanishes without a close (no TCP FIN): the server would keep the dead
    socket, and the user id, until Engine.IO's ping timeout (~45 s). The app's new socket
    proves it is the same participant with the join answer's rejoin token and takes over."""
    carol = room["Carol"]
    before = carol.user_id()
    started = time.monotonic()
    carol.eval("() => window.__sfuDebug.simulateSilentDrop()")
    wait_until(
        lambda: (
            f"user-left {before} from {room.id} (replaced by a new connection)"
            in e2e_server.log_tail(400)
        ),
        what="the server to replace Carol's stale socket",
    )
    carol.wait_joined()
    assert carol.user_id() == before
    assert_meets_everyone_again(room, "Carol")
    wait_until(lambda: len(connected_peers(carol)) == 2, what="Carol's 2 peers")
    # Well inside the ping timeout the stale socket would otherwise have held the id for.
    assert time.monotonic() - started < 30


def test_late_joiner_connects_then_leaves(netns: None, room: Room, launch: LaunchFn) -> None:
    dave = launch("Dave", room=room.id)
    dave.wait_joined()
    for name in ("Alice", "Bob", "Carol"):
        assert_sees(dave, name)
        assert_sees(room[name], "Dave")
    dave_id = dave.user_id()
    for p in room.people.values():
        assert dave_id in {x["userId"] for x in p.peers()}
    # the chat history of the join answer: Bob's earlier message
    dave.page.get_by_test_id("chat-button").click()
    dave.page.get_by_test_id("chat-message").filter(has_text="Hello from Bob").wait_for()

    dave.page.get_by_test_id("leave-button").click()
    dave.page.get_by_test_id("left-page").wait_for()  # "You left the meeting" (#18)
    dave.page.get_by_test_id("home-button").click()
    dave.page.wait_for_url(re.compile(r"/$"))
    for p in room.people.values():
        p.tile("Dave").wait_for(state="detached")
        wait_until(
            lambda p=p: dave_id not in {x["userId"] for x in p.peers()},
            what=f"{p.name} to close the connection to Dave",
        )
        assert p.page.locator('video[aria-label="Dave"]').count() == 0
        assert len(connected_peers(p)) == 2


def fetch_download(p: Participant, href: str) -> bytes:
    """The bytes of a blob URL the page made (a download link)."""
    encoded = p.eval(
        """(href) => fetch(href).then(r => r.blob()).then(b => new Promise(done => {
             const f = new FileReader();
             f.onload = () => done(f.result.slice(f.result.indexOf('base64,') + 7));
             f.readAsDataURL(b) }))""",
        href,
    )
    return base64.b64decode(encoded)


def decoded(path: Path) -> tuple[float, list[Any]]:
    """(container duration in s, frames after a seek to the middle), decoded with PyAV."""
    with av.open(str(path)) as container:
        assert container.duration is not None, "no duration: players cannot seek"
        duration = container.duration / av.time_base
        container.seek(int(duration / 2 * av.time_base))
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == 3:
                break
    return duration, frames


def test_local_recording_is_announced_seekable_and_draws_a_camera_off_tile(
    netns: None, room: Room, tmp_path: Path
) -> None:
    bob, alice, carol = room["Bob"], room["Alice"], room["Carol"]
    carol.page.get_by_test_id("toggle-camera").click()  # her tile: initials, in the file too
    bob.page.get_by_test_id("record-button").click()
    for p in (alice, carol):  # told: a badge on Bob's tile, and a toast
        p.tile("Bob").get_by_test_id("local-rec-badge").wait_for()
    alice.page.get_by_text("Bob is recording this meeting on their computer").wait_for()
    bob.page.wait_for_timeout(3000)
    bob.page.get_by_test_id("record-button").click()
    link = bob.page.get_by_test_id("recording-download")
    link.wait_for()
    name = link.get_attribute("download") or ""
    assert re.match(r"meeting-.*\.webm$", name), name
    alice.tile("Bob").get_by_test_id("local-rec-badge").wait_for(state="detached")
    path = tmp_path / name
    path.write_bytes(fetch_download(bob, link.get_attribute("href") or ""))
    duration, frames = decoded(path)
    assert 2.5 < duration < 15, duration
    assert frames, "nothing decoded after a seek to the middle"
    # The grid of the file: Carol's cell holds the placeholder colour, not black.
    order = bob.eval(
        "() => [...document.querySelectorAll('video[data-user-id]')].map(v => v.ariaLabel)"
    )
    frame = frames[-1]
    height, width, _ = frame.shape
    cols = math.ceil(math.sqrt(len(order)))
    rows = math.ceil(len(order) / cols)
    i = order.index("Carol")
    x0, y0 = (i % cols) * width // cols, (i // cols) * height // rows
    corner = frame[y0 + 12 : y0 + 28, x0 + 12 : x0 + 28].reshape(-1, 3).mean(axis=0)
    assert all(abs(c - w) < 30 for c, w in zip(corner, (47, 58, 77), strict=True)), corner
    carol.page.get_by_test_id("toggle-camera").click()
    assert_sees(alice, "Carol")


def test_leaving_while_recording_locally_asks_and_saves_the_file(
    netns: None, room: Room, tmp_path: Path
) -> None:
    carol = room.people.pop("Carol")
    carol.page.get_by_test_id("record-button").click()
    carol.page.wait_for_timeout(2000)
    carol.page.get_by_test_id("leave-button").click()
    confirm = carol.page.get_by_test_id("leave-confirm")
    confirm.wait_for()
    carol.page.get_by_test_id("leave-stay").click()  # changed her mind: still in, still recording
    assert (
        carol.page.get_by_test_id("record-button").get_attribute("aria-label")
        == "Stop local recording"
    )
    carol.page.get_by_test_id("leave-button").click()
    with carol.page.expect_download() as download:
        carol.page.get_by_test_id("leave-save").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    carol.page.get_by_test_id("left-page").wait_for()
    duration, frames = decoded(saved)
    assert duration > 1.5 and frames
