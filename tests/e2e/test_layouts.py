"""Layouts (#18): a centred grid of whole pictures, pin, speaker view, a screen share shown
large, the participant count; at a laptop and at a phone size, screenshots in test-output/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    LaunchFn,
    Participant,
    ServerProcess,
    assert_gets_screen,
    assert_sees,
    wait_until,
)

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]

OUT = Path(__file__).resolve().parents[2] / "test-output"


@pytest.fixture(scope="module")
def people(e2e_server: ServerProcess, launch: LaunchFn) -> Iterator[dict[str, Participant]]:
    room_id = e2e_server.create_room("p2p")
    made = {}
    for name in ("Alice", "Bob", "Carol"):
        made[name] = launch(name, room=room_id, viewport=(1280, 800))
        made[name].wait_joined()
    for viewer in made.values():
        for other in made:
            if other != viewer.name:
                assert_sees(viewer, other)
    yield made
    for p in made.values():
        p.close()


JS_FIT = '(n) => getComputedStyle(document.querySelector(`video[aria-label="${n}"]`)).objectFit'


def box(p: Participant, name: str) -> dict[str, float]:
    return p.tile(name).bounding_box()


def tiles(p: Participant) -> Any:
    return p.page.get_by_test_id("tiles")


def test_a_centred_grid_of_whole_pictures_and_the_count(
    netns: None, people: dict[str, Participant]
) -> None:
    alice = people["Alice"]
    assert alice.page.get_by_test_id("participant-count").inner_text().strip().endswith("3")
    grid = tiles(alice).bounding_box()
    boxes = {n: box(alice, n) for n in people}
    # Two columns: the third tile alone in its row, in the middle of it.
    last = max(boxes.values(), key=lambda b: b["y"])
    middle = grid["x"] + grid["width"] / 2
    assert abs(last["x"] + last["width"] / 2 - middle) < 6, (last, grid)
    fit = alice.eval(JS_FIT, "Bob")
    assert fit == "contain"  # the whole picture, not its middle
    alice.page.screenshot(path=str(OUT / "layout-grid.png"))
    alice.page.get_by_test_id("settings-button").click()
    alice.page.get_by_test_id("crop-toggle").check()
    wait_until(
        lambda: alice.eval(JS_FIT, "Bob") == "cover",
        what="cropped tiles",
    )
    alice.page.get_by_test_id("crop-toggle").uncheck()
    alice.page.get_by_test_id("settings-button").click()


def test_a_pinned_tile_is_shown_large_for_that_viewer_only(
    netns: None, people: dict[str, Participant]
) -> None:
    alice, bob = people["Alice"], people["Bob"]
    alice.tile("Bob").get_by_test_id("pin-button").click()
    wait_until(lambda: tiles(alice).get_attribute("data-stage-reason") == "pinned", what="pin")
    assert tiles(alice).get_attribute("data-stage") == bob.user_id()
    stage, strip = box(alice, "Bob"), box(alice, "Carol")
    assert stage["width"] * stage["height"] > 4 * strip["width"] * strip["height"]
    assert_sees(alice, "Bob")  # still live in its new place
    assert tiles(bob).get_attribute("data-stage") == ""  # Bob's own view is untouched
    alice.page.screenshot(path=str(OUT / "layout-pinned.png"))
    alice.tile("Bob").get_by_test_id("pin-button").click()
    wait_until(lambda: tiles(alice).get_attribute("data-stage") == "", what="unpinned")


def test_speaker_view_and_a_screen_share_take_the_stage(
    netns: None, people: dict[str, Participant]
) -> None:
    alice, carol = people["Alice"], people["Carol"]
    alice.page.get_by_test_id("layout-toggle").click()
    wait_until(lambda: tiles(alice).get_attribute("data-stage-reason") == "speaker", what="speaker")
    assert tiles(alice).get_attribute("data-stage") not in ("", alice.user_id())
    alice.page.get_by_test_id("layout-toggle").click()  # back to the grid
    wait_until(lambda: tiles(alice).get_attribute("data-stage") == "", what="grid again")

    carol.page.get_by_test_id("toggle-screen").click()
    carol.page.get_by_test_id("screen-share-warning").wait_for()
    assert_gets_screen(alice, "Carol")
    wait_until(lambda: tiles(alice).get_attribute("data-stage-reason") == "screen", what="screen")
    assert tiles(alice).get_attribute("data-stage") == carol.user_id()
    stage, strip = box(alice, "Carol"), box(alice, "Bob")
    assert stage["width"] > 3 * strip["width"]
    alice.page.screenshot(path=str(OUT / "layout-screen.png"))
    alice.page.set_viewport_size({"width": 390, "height": 844})  # a phone
    wait_until(lambda: box(alice, "Carol")["width"] > 300, what="the screen across a phone")
    alice.page.screenshot(path=str(OUT / "layout-screen-phone.png"))
    # The phone's toolbar: microphone, camera, chat, More and Leave in one row; More shows the rest.
    page = alice.page
    assert page.get_by_test_id("more-button").is_visible()
    assert not page.get_by_test_id("raise-hand").is_visible()
    row = {page.get_by_test_id(t).bounding_box()["y"] for t in ("toggle-mic", "leave-button")}
    assert len(row) == 1, row
    page.get_by_test_id("more-button").click()
    page.get_by_test_id("raise-hand").wait_for(state="visible")
    page.screenshot(path=str(OUT / "layout-phone-more.png"))
    page.get_by_test_id("more-button").click()
    alice.page.set_viewport_size({"width": 1280, "height": 800})
    assert not page.get_by_test_id("more-button").is_visible()
    assert page.get_by_test_id("raise-hand").is_visible()
    carol.page.get_by_test_id("toggle-screen").click()
    wait_until(lambda: tiles(alice).get_attribute("data-stage") == "", what="grid after the share")
