"""Publishers come and go past a Chromium viewer who stays: its subscribe m-lines are reused.

The server gives a new publisher's tracks the m-lines that a departed one left inactive
(same mid and SSRC, new msid; docs/sfu.md). In real Chromium that must look like a new
person, not the old one: after each join the viewer's tile named for the newcomer shows the
newcomer's colour from its very first frame (a single frame of the previous person's
colour would be a visible glitch: every frame the tile presents is sampled, from the first
one), plays the newcomer's tone, and the viewer's subscribe connection stays the same one
with as many m-lines as tracks it receives at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from tests.e2e.conftest import (
    PERSONAS,
    LaunchFn,
    Participant,
    ServerProcess,
    assert_hears,
    assert_sees,
    colour_close,
    wait_until,
)
from tests.e2e.hosts import KEEP_PEER_CONNECTIONS

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]

# Who publishes, one at a time, past Alice. Bob comes back at the end (a new join).
SEQUENCE = ["Bob", "Carol", "Dave", "Bob"]


JS_SUBSCRIBE_PCS = """() => window.__peerConnections
  .filter((pc) => pc.remoteDescription && pc.remoteDescription.type === 'offer')
  .map((pc) => ({
    signalingState: pc.signalingState,
    connectionState: pc.connectionState,
    mlines: (pc.remoteDescription.sdp.match(/^m=/gm) || []).length,
    transceivers: pc.getTransceivers().length,
  }))"""

# Samples the colour of every frame the tile of ``name`` presents, from its first, for
# ``ms`` milliseconds after that first frame (requestVideoFrameCallback, plus a 10 ms poll
# in case a frame is shown without a callback). Results in window.__samples[name].
JS_WATCH_TILE = """([name, ms]) => {
  const out = window.__samples = window.__samples || {};
  const samples = out[name] = [];
  const canvas = document.createElement('canvas'); canvas.width = 32; canvas.height = 24;
  const g = canvas.getContext('2d', {willReadFrequently: true});
  let first = null, watched = null;
  const colour = (v) => {
    g.drawImage(v, 0, 0, 32, 24);
    const d = g.getImageData(4, 4, 24, 16).data;
    let r = 0, gg = 0, b = 0, n = 0;
    for (let i = 0; i < d.length; i += 4) { r += d[i]; gg += d[i + 1]; b += d[i + 2]; n++; }
    return [r / n, gg / n, b / n];
  };
  const sample = (v, how, meta) => {
    if (!v.videoWidth || v.readyState < 2) return;
    const now = performance.now();
    if (first === null) first = now;
    if (now - first > ms) return 'done';
    samples.push({t: Math.round(now - first), how, rgb: colour(v),
                  rtp: meta ? meta.rtpTimestamp : null, shown: meta ? meta.presentedFrames : null});
  };
  const onFrame = (v) => (_now, meta) => {
    if (v !== watched) return;
    if (sample(v, 'frame', meta) !== 'done') v.requestVideoFrameCallback(onFrame(v));
  };
  const timer = setInterval(() => {
    const v = document.querySelector(`video[aria-label="${CSS.escape(name)}"]`);
    if (!v || !v.srcObject) return;
    if (v !== watched) { watched = v; v.requestVideoFrameCallback(onFrame(v)); }
    if (sample(v, 'poll', null) === 'done') clearInterval(timer);
  }, 10);
}"""


@pytest.fixture(scope="module")
def viewer(e2e_server: ServerProcess, launch: LaunchFn) -> Iterator[tuple[str, Participant]]:
    room_id = e2e_server.create_room("sfu")
    alice = launch("Alice")
    alice.context.add_init_script(KEEP_PEER_CONNECTIONS)
    alice.page.goto(f"/room/{room_id}?name=Alice&raw_audio=1")
    alice.wait_joined()
    yield room_id, alice


def subscribe_pcs(p: Participant) -> list[dict[str, Any]]:
    return p.eval(JS_SUBSCRIBE_PCS)


def three_seconds(viewer: Participant, name: str) -> list[dict[str, Any]] | None:
    """The samples of ``name``'s tile once they cover (nearly) 3 s."""
    samples = viewer.eval("(n) => (window.__samples || {})[n]", name)
    return samples if samples and samples[-1]["t"] >= 2500 else None


def sending_pair(
    server: ServerProcess, room_id: str, subscriber: str, publisher: str
) -> list[dict[str, Any]] | None:
    """The publisher's two consumers to the subscriber, once both are sending."""
    pair = [c for c in consumers_of(server, room_id, subscriber) if c["userId"] == publisher]
    return pair if len(pair) == 2 and all(c["sending"] for c in pair) else None


def consumers_of(server: ServerProcess, room_id: str, subscriber: str) -> list[dict[str, Any]]:
    return [c for c in server.room_media(room_id)["consumerList"] if c["subscriber"] == subscriber]


def test_publishers_come_and_go_past_a_chromium_viewer(
    e2e_server: ServerProcess, launch: LaunchFn, viewer: tuple[str, Participant]
) -> None:
    room_id, alice = viewer
    alice_id = alice.user_id()
    mids_seen: set[str] = set()
    previous: str | None = None
    for step, name in enumerate(SEQUENCE):
        persona = PERSONAS[name]
        alice.eval(JS_WATCH_TILE, [name, 3000])
        publisher = launch(name, room=room_id)
        publisher.wait_joined()
        assert_sees(alice, name)
        assert_hears(alice, name)
        # Every frame the new tile showed, from its first, is the newcomer's.
        samples = wait_until(
            partial(three_seconds, alice, name),
            timeout=10,
            what=f"3 s of samples of {name}'s tile",
        )
        others = [PERSONAS[n].rgb for n in PERSONAS if n != name]
        stale = [s for s in samples if any(colour_close(s["rgb"], c, tol=40) for c in others)]
        wrong = [s for s in samples if not colour_close(s["rgb"], persona.rgb)]
        print(
            f"{name}: {len(samples)} samples over {samples[-1]['t']} ms, first {samples[0]},"
            f" {len(wrong)} not {name}'s colour, {len(stale)} of someone else's"
        )
        assert not stale, f"{name}'s new tile showed someone else's colour: {stale[:5]}"
        assert not wrong, f"{name}'s new tile showed other frames: {wrong[:5]}"
        # One subscribe connection all along, with two m-lines (one publisher at a time).
        pcs = subscribe_pcs(alice)
        assert len(pcs) == 1, pcs
        assert pcs[0]["connectionState"] == "connected", pcs
        assert pcs[0]["mlines"] == 2 and pcs[0]["transceivers"] == 2, pcs
        # The server: the newcomer's two tracks on the same two mids as the first one's.
        publisher_id = publisher.user_id()
        mine = wait_until(
            partial(sending_pair, e2e_server, room_id, alice_id, publisher_id),
            what=f"{name}'s two consumers to Alice sending",
        )
        mids = {c["mid"] for c in mine}
        if step == 0:
            mids_seen = mids
        assert mids == mids_seen, f"{name} got new m-lines {mids} instead of {mids_seen}"
        assert alice.peers() and all(p["connectionState"] == "connected" for p in alice.peers())
        # The publisher leaves; its tile goes, nobody else's comes.
        publisher.page.get_by_test_id("leave-button").click()
        publisher.page.get_by_test_id("left-page").wait_for()
        alice.tile(name).wait_for(state="detached")
        wait_until(
            lambda: not consumers_of(e2e_server, room_id, alice_id),
            what=f"{name}'s consumers to Alice gone",
        )
        publisher.close()
        previous = name
    assert previous == SEQUENCE[-1]
    # Alone again: still the same subscribe connection, still two m-lines, both inactive.
    pcs = subscribe_pcs(alice)
    assert len(pcs) == 1 and pcs[0]["mlines"] == 2, pcs
