"""The server recordings page in real Chromium (#18): a named SFU meeting made on the start
page, recorded with two people; after Stop the page shows "Finishing… N%" (or goes straight
to ready) without Play, then the meeting's name (its room id below), who started and stopped
it and who took part by name, the duration and size, a thumbnail from the middle of the file
in a camera's colour, and Play. Screenshots at a laptop and a phone size in test-output/.
"""

from __future__ import annotations

import re
import urllib.parse

import pytest

from tests.e2e.conftest import (
    OUTPUT_DIR,
    PERSONAS,
    LaunchFn,
    ServerProcess,
    join_from_prejoin,
    wait_until,
)
from tests.e2e.test_recording_ui import room_token

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]

MEETING = "Weekly design review"

# Every status the first item shows, and whether Play was offered while it was not ready:
# watched by the page itself, so a short "finishing" between two polls is not missed.
JS_WATCH = """() => {
  window.__seen = [];
  window.__playTooEarly = false;
  const look = () => {
    const item = document.querySelector('[data-testid=recording-item]');
    if (!item) return;
    const status = item.dataset.status;
    const label = item.querySelector('[data-testid=recording-status]')?.textContent || '';
    const last = window.__seen[window.__seen.length - 1];
    if (!last || last.status !== status || last.label !== label) {
      window.__seen.push({status, label});
    }
    if (status !== 'ready' && item.querySelector('[data-testid=recording-play]')) {
      window.__playTooEarly = true;
    }
  };
  const all = {subtree: true, childList: true, attributes: true, characterData: true};
  new MutationObserver(look).observe(document.body, all);
  look();
}"""

# Share of the thumbnail's pixels near each colour (the <img> is same-origin: readable).
JS_THUMB_SHARES = """(colours) => {
  const img = document.querySelector('[data-testid=recording-thumbnail]');
  if (!img || !img.complete || !img.naturalWidth) return null;
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d', {willReadFrequently: true});
  g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  const counts = colours.map(() => 0);
  const near = (i, rgb) => [0, 1, 2].every(j => Math.abs(d[i + j] - rgb[j]) < 40);
  for (let i = 0; i < d.length; i += 4) {
    colours.forEach((rgb, k) => { if (near(i, rgb)) counts[k]++; });
  }
  const shares = counts.map(n => n / (d.length / 4));
  return {width: img.naturalWidth, height: img.naturalHeight, shares};
}"""


def test_recordings_page_names_thumbnail_and_finishing(
    netns: None, e2e_server: ServerProcess, launch: LaunchFn
) -> None:
    # Alice makes a named meeting through the server on the start page.
    alice = launch("Alice", path="/?raw_audio=1", viewport=(1280, 800))
    alice.page.get_by_label("Your name").fill("Alice")
    alice.page.get_by_label("Meeting name").fill(MEETING)
    alice.page.get_by_label("SFU").check()
    alice.page.get_by_role("button", name="Create room").click()
    alice.page.wait_for_url(re.compile(r"/room/[a-z-]+\?raw_audio=1$"))
    room_id = alice.page.url.split("/room/")[1].split("?")[0]
    join_from_prejoin(alice)
    info = e2e_server.admin("GET", f"/api/rooms/{room_id}")
    assert info["roomName"] == MEETING and info["mode"] == "sfu", info
    bob = launch("Bob", room=room_id)
    bob.wait_joined()
    for viewer, other in ((alice, "Bob"), (bob, "Alice")):
        viewer.tile(other).wait_for()
        # The meeting's name heads the room and names the tab; the id stays beside it.
        assert viewer.page.get_by_test_id("room-name").inner_text() == MEETING
        assert viewer.page.title() == f"{MEETING} · Meeting"

    token = room_token(alice)
    page = alice.context.new_page()
    try:
        page.set_viewport_size({"width": 1280, "height": 800})
        alice.page.get_by_test_id("server-record-button").click()
        for p in (alice, bob):
            p.page.get_by_test_id("rec-indicator").wait_for()
        # The page is open while it records: it polls, and sees the stop and the finishing.
        page.goto(f"/recordings?token={urllib.parse.quote(token)}")
        item = page.get_by_test_id("recording-item")
        item.wait_for()
        page.evaluate(JS_WATCH)
        assert item.get_attribute("data-status") == "recording"
        assert page.get_by_test_id("recording-play").count() == 0
        alice.page.wait_for_timeout(4000)
        alice.page.get_by_test_id("server-record-button").click()
        after_stop = (
            '[data-testid=recording-item]:is([data-status="finishing"], [data-status="ready"])'
        )
        page.wait_for_selector(after_stop, timeout=30_000)
        if item.get_attribute("data-status") == "finishing":  # (under load it takes a while)
            page.screenshot(path=str(OUTPUT_DIR / "recordings-page-finishing.png"))
        page.wait_for_selector('[data-testid=recording-item][data-status="ready"]', timeout=90_000)
        seen = page.evaluate("() => window.__seen")
        statuses = [s["status"] for s in seen]
        assert statuses[0] == "recording" and statuses[-1] == "ready", seen
        assert set(statuses) <= {"recording", "finishing", "ready"}, seen
        for s in seen:
            if s["status"] == "finishing":
                assert re.fullmatch(r"Finishing…( \d{1,3}%)?", s["label"]), s
        assert not page.evaluate("() => window.__playTooEarly"), "Play before the file was ready"

        # By name: the meeting (its room id below), the starter, the stopper, who took part.
        assert page.get_by_test_id("recording-title").inner_text() == MEETING
        assert room_id in page.get_by_test_id("recording-room").inner_text()
        assert page.get_by_test_id("recording-started-by").inner_text() == "Started by Alice"
        assert page.get_by_test_id("recording-stopped-by").inner_text() == "Stopped by Alice"
        people = page.get_by_test_id("recording-participants").inner_text()
        assert "Alice" in people and "Bob" in people, people
        assert not re.search(r"\bu-[a-z0-9]{6,}", item.inner_text()), item.inner_text()
        duration = page.get_by_test_id("recording-duration").inner_text()
        minutes, seconds = (int(x) for x in duration.split(":"))
        assert 3 <= minutes * 60 + seconds <= 15, duration
        assert re.fullmatch(
            r"\d+(\.\d)? (KB|MB)", page.get_by_test_id("recording-size").inner_text()
        )
        assert page.get_by_test_id("recording-status").inner_text() == "Ready"

        # The thumbnail loads, and shows a camera: Alice's red or Bob's green.
        colours = [PERSONAS["Alice"].rgb, PERSONAS["Bob"].rgb]
        thumb = wait_until(
            lambda: page.evaluate(JS_THUMB_SHARES, colours), what="the thumbnail to load"
        )
        assert thumb["width"] == 320 and thumb["height"] > 0, thumb
        assert max(thumb["shares"]) > 0.05, thumb
        print("statuses seen:", seen, "thumbnail:", thumb)

        page.screenshot(path=str(OUTPUT_DIR / "recordings-page.png"))
        page.set_viewport_size({"width": 390, "height": 844})
        page.get_by_test_id("recording-thumbnail").wait_for()
        page.screenshot(path=str(OUTPUT_DIR / "recordings-page-390x844.png"))
        page.set_viewport_size({"width": 1280, "height": 800})

        # Play, now that it is ready.
        page.get_by_test_id("recording-play").click()
        page.get_by_test_id("recording-video").wait_for()
        wait_until(
            lambda: page.evaluate(
                "() => { const v = document.querySelector('[data-testid=recording-video]');"
                " return v && v.readyState >= 1 && v.duration > 0 }"
            ),
            timeout=20,
            what="the recording to load in the <video>",
        )
    finally:
        page.close()
