"""Other room situations in real Chromium: a receive-only participant, joining by link."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import (
    PERSONAS,
    LaunchFn,
    ServerProcess,
    colour_close,
    join_from_prejoin,
    wait_until,
)

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]


def test_denied_permission_joins_receive_only(
    netns: None, e2e_server: ServerProcess, launch: LaunchFn
) -> None:
    room = e2e_server.create_room("p2p")
    alice = launch("Alice", room=room)
    alice.wait_joined()
    dave = launch("Dave", room=room, grant_media=False)
    dave.wait_joined()
    problem = dave.page.get_by_test_id("media-problem")
    assert "permission was denied" in problem.inner_text()
    # Dave receives Alice's picture and sound although he sends nothing.
    wait_until(
        lambda: colour_close(dave.video_colour("Alice"), PERSONAS["Alice"].rgb),
        what="Dave to see Alice",
    )
    peak = wait_until(lambda: dave.audio_peak("Alice"), what="Alice's audio at Dave")
    assert peak["readyState"] == "live"
    # Alice sees Dave's tile with camera and microphone off.
    alice.page.wait_for_selector(
        '[data-testid=video-tile][data-name="Dave"][data-audio="off"][data-video="off"]'
    )


def test_home_page_joins_a_room_by_link(
    netns: None, e2e_server: ServerProcess, launch: LaunchFn
) -> None:
    room = e2e_server.create_room("p2p")
    bob = launch("Bob", path="/")
    bob.page.get_by_label("Your name").fill("Bob")
    bob.page.get_by_label("Room id or link").fill(f"{e2e_server.url}/room/{room}")
    bob.page.get_by_role("button", name="Join", exact=True).click()
    join_from_prejoin(bob)
    assert bob.page.url.endswith(f"/room/{room}")
    assert bob.page.get_by_test_id("mode-badge").inner_text() == "P2P"
    bob.tile("Bob").wait_for()
