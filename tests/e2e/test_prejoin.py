"""The pre-join screen (#18): the camera as others will see it, the microphone's level, a
speaker test, joining muted or with the camera off, and a denied camera explained with a
retry; at a laptop and at a phone size, screenshots in test-output/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import (
    JS_VIDEO_COLOUR,
    PERSONAS,
    LaunchFn,
    ServerProcess,
    assert_sees,
    colour_close,
    wait_until,
)

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]

OUT = Path(__file__).resolve().parents[2] / "test-output"
PREVIEW = "Your camera preview"


def test_preview_meter_speaker_test_and_joining_muted_with_the_camera_off(
    netns: None, e2e_server: ServerProcess, launch: LaunchFn
) -> None:
    room_id = e2e_server.create_room("p2p")
    bob = launch("Bob", room=room_id)
    bob.wait_joined()
    carol = launch("Carol", path=f"/room/{room_id}?raw_audio=1", viewport=(1280, 800))
    try:
        page = carol.page
        page.get_by_test_id("prejoin").wait_for()
        # Her own camera, before anyone sees it.
        wait_until(
            lambda: colour_close(carol.eval(JS_VIDEO_COLOUR, PREVIEW), PERSONAS["Carol"].rgb),
            what="Carol's colour in the preview",
        )
        # The microphone meter moves with her tone.
        wait_until(
            lambda: float(page.get_by_test_id("mic-meter").get_attribute("value") or 0) > 0.05,
            what="the microphone meter to rise",
        )
        page.screenshot(path=str(OUT / "prejoin.png"))
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(OUT / "prejoin-phone.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 800})

        speaker = page.get_by_test_id("speaker-test")
        speaker.click()
        assert speaker.get_attribute("data-playing") == "yes"
        wait_until(lambda: speaker.get_attribute("data-playing") == "no", what="the chime to end")

        # Camera off and muted: the preview says so, the meter rests; then she joins so.
        page.get_by_test_id("prejoin-camera").uncheck()
        page.get_by_text("Camera is off").wait_for()
        page.get_by_test_id("prejoin-mic").uncheck()
        wait_until(
            lambda: float(page.get_by_test_id("mic-meter").get_attribute("value") or 0) == 0,
            what="the meter to rest",
        )
        page.get_by_label("Your name").fill("Carol")
        page.get_by_test_id("prejoin-join").click()
        carol.wait_joined()
        tile = bob.tile("Carol")
        tile.wait_for()
        wait_until(
            lambda: (
                (tile.get_attribute("data-video"), tile.get_attribute("data-audio"))
                == ("off", "off")
            ),
            what="Bob to see Carol joined muted with her camera off",
        )
        # She turns the camera on in the meeting: the preview's choice was only the start.
        page.get_by_test_id("toggle-camera").click()
        assert_sees(bob, "Carol")
    finally:
        carol.close()
        bob.close()


def test_a_denied_camera_is_explained_with_a_retry_and_the_meeting_still_opens(
    netns: None, e2e_server: ServerProcess, launch: LaunchFn
) -> None:
    room_id = e2e_server.create_room("p2p")
    dave = launch("Dave", path=f"/room/{room_id}?raw_audio=1", grant_media=False)
    try:
        page = dave.page
        denied = page.get_by_test_id("media-denied")
        denied.wait_for()
        text = denied.inner_text()
        assert "blocked your camera and microphone" in text
        assert "address bar" in text and "Try again" in text  # what to do, in Chromium
        page.screenshot(path=str(OUT / "prejoin-denied.png"))
        page.get_by_test_id("media-retry").click()  # asks again: still denied, still explained
        denied.wait_for()
        page.get_by_label("Your name").fill("Dave")
        page.get_by_test_id("prejoin-join").click()
        dave.wait_joined()  # to watch, listen and chat
    finally:
        dave.close()


def test_a_german_browser_is_spoken_to_in_german(
    netns: None, e2e_server: ServerProcess, launch: LaunchFn
) -> None:
    """The catalogue's second language (?lang=de stands in for a German browser): the page's
    language, the pre-join screen and the browser advice for a blocked camera."""
    room_id = e2e_server.create_room("p2p")
    erin = launch("Dave", path=f"/room/{room_id}?raw_audio=1&lang=de", grant_media=False)
    try:
        page = erin.page
        denied = page.get_by_test_id("media-denied")
        denied.wait_for()
        assert page.evaluate("() => document.documentElement.lang") == "de"
        text = denied.inner_text()
        assert "Der Browser hat Kamera und Mikrofon blockiert." in text
        assert "Adressleiste" in text and "Erneut versuchen" in text
        assert page.get_by_test_id("speaker-test").inner_text() == "Lautsprecher testen"
        page.screenshot(path=str(OUT / "prejoin-de.png"))
    finally:
        erin.close()
