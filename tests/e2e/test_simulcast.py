"""Simulcast in real Chromium (#17): a camera published in three encodings, one forwarded
to each subscriber by the size of its tile and its link, nothing to a hidden tile, and
switches that the subscriber's decoder never notices.

Alice's fake camera is a 960x540 picture with moving detail (a solid colour would cost the
encoder nothing). In a simulcast room the app asks the camera for 1280x720
(client/src/services/simulcast.ts); the fake camera gives its 960x540, from which Chromium
sends all three of the server's layers: "q" 240x135, "h" 480x270 and "f" 960x540.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sfu.loadtest import SfuPeer, SocketIORouter
from sfu.media.aiortc.receiver import ReceiverTap
from sfu.media.rtp import vp8
from sfu.media.rtp.codecs import vp8_size
from tests.e2e.conftest import (
    ADMIN_TOKEN,
    LaunchFn,
    Participant,
    ServerProcess,
    close_launched,
    start_server,
    stop_server,
    wait_until,
)
from tests.e2e.hosts import KEEP_PEER_CONNECTIONS, launch_in_host, require_topology
from tests.support.topology import Topology

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]

W, H, FPS = 960, 540, 15


def write_busy_y4m(path: Path, seconds: float = 4.0) -> Path:
    """A 960x540 clip of moving stripes: enough detail that each layer has a real bitrate."""
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{W} H{H} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        x = np.arange(W)[None, :]
        y = np.arange(H)[:, None]
        for i in range(int(seconds * FPS)):
            luma = ((x + y + 8 * i) // 16 % 2 * 140 + 60).astype(np.uint8)
            f.write(b"FRAME\n" + luma.tobytes())
            f.write(np.full((H // 2, W // 2), 90, np.uint8).tobytes())
            f.write(np.full((H // 2, W // 2), 170, np.uint8).tobytes())
    return path


def write_still_y4m(path: Path, luma: int, seconds: float = 2.0) -> Path:
    """A 960x540 clip of one flat colour: published in three layers, encoded for almost
    nothing."""
    frame = b"FRAME\n" + bytes([luma]) * (W * H) + bytes([128]) * (W * H // 2)
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{W} H{H} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(int(seconds * FPS)):
            f.write(frame)
    return path


JS_TILE = """(name) => {
  const v = document.querySelector(`video[aria-label="${CSS.escape(name)}"]`);
  if (!v) return null;
  const q = v.getVideoPlaybackQuality();
  return {width: v.videoWidth, height: v.videoHeight, frames: q.totalVideoFrames,
          dropped: q.droppedVideoFrames};
}"""

JS_STYLE = """([name, css]) => {
  const v = document.querySelector(`video[aria-label="${CSS.escape(name)}"]`);
  v.style.cssText = css;
}"""


def tile(p: Participant, name: str) -> dict[str, Any] | None:
    return p.eval(JS_TILE, name)


def frames_advance(p: Participant, name: str, seconds: float = 1.5) -> bool:
    before = tile(p, name)
    p.page.wait_for_timeout(int(seconds * 1000))
    after = tile(p, name)
    return bool(before and after and after["frames"] > before["frames"])


def wait_width(p: Participant, name: str, width: int, what: str, timeout: float = 30) -> None:
    seen: list[Any] = []

    def check() -> Any:
        t = tile(p, name)
        seen[:] = [t]
        return t if t and t["width"] == width else None

    try:
        wait_until(check, timeout=timeout, what=what)
    except BaseException:
        print(f"{p.name}'s last tile of {name}:", seen)
        raise


def rooms_show(server: ServerProcess, room_id: str) -> str:
    """What ``sfu rooms show`` prints of the room (the admin's view)."""
    done = subprocess.run(
        [sys.executable, "-m", "sfu", "rooms", "show", room_id, "--server", server.url,
         "--token", ADMIN_TOKEN],
        capture_output=True, text=True, timeout=30, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def consumer_of(server: ServerProcess, room_id: str, subscriber: str, user: str) -> dict:
    media = server.room_media(room_id)
    return next(
        c
        for c in media["consumerList"]
        if c["subscriber"] == subscriber and c["userId"] == user and c["kind"] == "video"
    )


def dump_consumers(server: ServerProcess, room_id: str) -> None:
    """Prints every video consumer's layer state (for a failing test's log)."""
    keys = ("layer", "targetLayer", "temporalLayer", "layerReason", "rate", "remb", "nacked")
    keys += ("resent", "forwarded", "overflows", "waitingKeyframe", "layerSwitches")
    media = server.room_media(room_id)
    for c in media["consumerList"]:
        if c["kind"] == "video":
            print(c["subscriber"], "<-", c["userId"], {k: c.get(k) for k in keys})
    for p in media["producers"]:
        if p["kind"] == "video":
            print(p["userId"], "keyframes", p["keyframes"], p["keyframeRequests"], p["layers"])


def wait_layer(
    server: ServerProcess,
    room_id: str,
    bob: Participant,
    alice: Participant,
    layer: int,
    why: str | None,
    timeout: float = 15,
) -> dict:
    """Waits until Bob's consumer of Alice's camera forwards ``layer`` (for ``why``)."""

    seen: list[dict] = []

    def check() -> Any:
        c = consumer_of(server, room_id, bob.user_id(), alice.user_id())
        seen[:] = [c]
        return c if c.get("layer") == layer and why in (None, c.get("layerReason")) else None

    try:
        return wait_until(check, timeout=timeout, what=f"{bob.name}'s layer {layer} ({why})")
    except BaseException:
        print("last consumer state:", seen)
        raise


@pytest.fixture
def busy_clip(media_dir: Path) -> Path:
    clip = media_dir / "busy-960x540.y4m"
    if not clip.exists():
        write_busy_y4m(clip)
    return clip


@pytest.fixture
def busy_camera(busy_clip: Path) -> list[str]:
    return [f"--use-file-for-fake-video-capture={busy_clip}"]


@pytest.fixture
def room(
    e2e_server: ServerProcess, launch: LaunchFn, busy_camera: list[str]
) -> Iterator[tuple[str, Participant, Participant]]:
    room_id = e2e_server.create_room("sfu")
    alice = launch("Alice", room=room_id, extra_args=busy_camera)
    alice.wait_joined()
    bob = launch("Bob", room=room_id)
    bob.wait_joined()
    yield room_id, alice, bob
    close_launched(launch)


def test_a_camera_is_published_in_three_layers_and_a_big_tile_gets_the_top_one(
    netns: None, e2e_server: ServerProcess, room: tuple[str, Participant, Participant]
) -> None:
    room_id, alice, bob = room
    wait_until(lambda: (tile(bob, "Alice") or {}).get("frames"), what="Bob's tile of Alice")

    def layers() -> Any:
        media = e2e_server.room_media(room_id)
        video = [p for p in media["producers"] if p["kind"] == "video" and p["layers"]]
        if video and all(x["active"] and x["width"] and x["bitrate"] for x in video[0]["layers"]):
            return video[0]["layers"]
        return None

    got = wait_until(layers, timeout=40, what="Alice's layers arriving")
    assert [(x["rid"], x["width"], x["height"]) for x in got] == [
        ("q", 240, 135),
        ("h", 480, 270),
        ("f", 960, 540),
    ], got

    # Bob's tile is taller than 270 device pixels: the full layer.
    wait_width(bob, "Alice", 960, "Bob's big tile of Alice on the full layer")
    assert frames_advance(bob, "Alice")
    wait_layer(e2e_server, room_id, bob, alice, 2, "best")
    # The administrator sees it: Bob gets Alice's camera on layer f, for being the best.
    shown = rooms_show(e2e_server, room_id)
    row = rf"{alice.user_id()}\s*│\s*camera\s*│\s*f\s*│\s*f\s*│\s*best"
    assert "video layers" in shown and re.search(row, shown), shown

    # A small tile (120 CSS pixels tall at a device pixel ratio of 1): the 135-line layer;
    # 200 pixels: the 270-line one.
    bob.eval(JS_STYLE, ["Alice", "height: 120px; width: 160px"])
    wait_width(bob, "Alice", 240, "Bob's small tile of Alice on the quarter layer")
    wait_layer(e2e_server, room_id, bob, alice, 0, "tile")
    assert frames_advance(bob, "Alice")
    bob.eval(JS_STYLE, ["Alice", "height: 200px; width: 267px"])
    wait_width(bob, "Alice", 480, "Bob's middle-sized tile of Alice on the half layer")
    wait_layer(e2e_server, room_id, bob, alice, 1, "tile")
    assert frames_advance(bob, "Alice")

    # Hidden (display: none): nothing is forwarded; shown again: the full layer.
    bob.eval(JS_STYLE, ["Alice", "display: none"])
    wait_until(
        lambda: consumer_of(e2e_server, room_id, bob.user_id(), alice.user_id())["paused"],
        what="Bob's hidden tile of Alice paused",
    )
    forwarded = consumer_of(e2e_server, room_id, bob.user_id(), alice.user_id())["forwarded"]
    bob.page.wait_for_timeout(1500)
    later = consumer_of(e2e_server, room_id, bob.user_id(), alice.user_id())
    assert later["forwarded"] == forwarded and later["layerReason"] == "hidden", later
    hidden = rf"{alice.user_id()}\s*│\s*camera\s*│\s*none\s*│\s*\S+\s*│\s*hidden"
    assert re.search(hidden, rooms_show(e2e_server, room_id))
    bob.eval(JS_STYLE, ["Alice", ""])
    wait_width(bob, "Alice", 960, "Bob's tile of Alice shown again, on the full layer")
    assert frames_advance(bob, "Alice")
    wait_layer(e2e_server, room_id, bob, alice, 2, "best")

    # Low bandwidth mode (the settings panel): the lowest layer, whatever the tile; off: back.
    bob.page.get_by_test_id("settings-button").click()
    toggle = bob.page.get_by_test_id("low-bandwidth-toggle")
    toggle.check()
    wait_layer(e2e_server, room_id, bob, alice, 0, "preference")
    wait_width(bob, "Alice", 240, "Bob's tile of Alice in low bandwidth mode")
    assert frames_advance(bob, "Alice")
    toggle.uncheck()
    wait_layer(e2e_server, room_id, bob, alice, 2, "best")
    wait_width(bob, "Alice", 960, "Bob's tile of Alice after low bandwidth mode")


# The subscribe connection's inbound video: what Chromium's decoder made of the stream.
JS_INBOUND_VIDEO = """async () => {
  const out = [];
  for (const pc of window.__peerConnections || []) {
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video' && s.framesDecoded) out.push({
        framesDecoded: s.framesDecoded, framesDropped: s.framesDropped || 0,
        freezeCount: s.freezeCount || 0, keyFramesDecoded: s.keyFramesDecoded || 0,
        packetsLost: s.packetsLost || 0, frameWidth: s.frameWidth || 0,
        pliCount: s.pliCount || 0, framesReceived: s.framesReceived || 0,
      });
    });
  }
  return out;
}"""


@pytest.fixture
def switching(
    tmp_path: Path, launch: LaunchFn, busy_camera: list[str]
) -> Iterator[tuple[ServerProcess, str, Participant]]:
    """A server whose test hook moves every simulcast subscriber to another layer every
    two seconds, an SFU room on it, and Alice publishing her busy camera there."""
    server = start_server(tmp_path, {"SFU_SFU__SIMULCAST_SWITCH_SECONDS": "2"})
    try:
        room_id = server.create_room("sfu")
        url = f"{server.url}/room/{room_id}?raw_audio=1&name=Alice"
        alice = launch("Alice", path=url, extra_args=busy_camera)
        alice.wait_joined()
        yield server, room_id, alice
    finally:
        close_launched(launch)
        stop_server(server)


# Timing on a loaded 2-core machine (publisher CPU, libwebrtc's estimates) makes this and the
# weak-link test fail now and then on thresholds, not on function: a second try is allowed.
@pytest.mark.flaky(reruns=2)
def test_forced_layer_switches_are_invisible_to_the_decoder(
    netns: None, switching: tuple[ServerProcess, str, Participant], launch: LaunchFn
) -> None:
    # (Every 2 s: every second, the keyframes each switch needs cost a publisher on this
    # 2-core machine half its frames.)
    server, room_id, alice = switching
    url = f"{server.url}/room/{room_id}?raw_audio=1&name="
    bob = launch("Bob", path=url + "Bob", init_scripts=(KEEP_PEER_CONNECTIONS,))
    bob.wait_joined()
    wait_until(lambda: (tile(bob, "Alice") or {}).get("frames"), what="Bob's tile of Alice")
    widths: set[int] = set()

    def both_layers_seen() -> bool:
        t = tile(bob, "Alice")
        if t:
            widths.add(t["width"])
        return {240, 480, 960} <= widths

    wait_until(both_layers_seen, timeout=40, interval=0.1, what="every layer on Bob's tile")
    before = bob.eval(JS_INBOUND_VIDEO)[0]
    switches_before = consumer_of(server, room_id, bob.user_id(), alice.user_id())
    bob.page.wait_for_timeout(10_000)
    after = bob.eval(JS_INBOUND_VIDEO)[0]
    consumer = consumer_of(server, room_id, bob.user_id(), alice.user_id())
    switches = consumer["layerSwitches"] - switches_before["layerSwitches"]
    decoded = after["framesDecoded"] - before["framesDecoded"]
    # About five switches in ten seconds, each at a keyframe of the other layer (fewer
    # when the publisher, short of CPU or uplink, pauses its top layer a moment).
    assert switches >= 2, (switches, consumer)
    # A third of the time the hook forwards the full layer's base temporal layer only.
    assert consumer["temporalDrops"] > switches_before["temporalDrops"], consumer
    forwarded = consumer["forwarded"] - switches_before["forwarded"]
    # The picture kept moving: nothing lost (the numbering has no gap), no keyframe
    # asked for by Bob (his decoder never lost its reference). Measured (2 cores, 2 s
    # switches): from 95 of 108 to 20 of 133 frames decoded in six runs. Not all: each
    # switch cuts one frame (the old layer's keyframe, made with the new one's), and
    # after the keyframes every switch asks for, the publisher's encoder sends upper
    # temporal-layer frames not marked as layer sync, which libwebrtc's VP8 reference
    # finder holds back (seen in the forwarded descriptors; it would do the same for
    # a subscriber that never switched).
    assert decoded >= 15 and forwarded >= 20, (forwarded, before, after)
    assert after["packetsLost"] == before["packetsLost"] == 0, (before, after)
    assert after["pliCount"] == before["pliCount"], (before, after)
    assert after["framesDropped"] - before["framesDropped"] <= 3 * switches, (before, after)
    assert after["freezeCount"] - before["freezeCount"] <= 2 * switches, (before, after)


# Carol's downlink while throttled (kbit/s), as the issue asks: Alice's lowest layer
# (240x135 of moving stripes, up to 150 kbit/s whole, 60 with its base temporal layer
# only), Bob's flat camera and two voices fit; Alice's middle layer (up to 500) does not.
THROTTLE_KBIT = 300
# How long a subscriber takes back to the full layer once its link is free again (s): its
# REMB must first recover (libwebrtc raises it additively after congestion: the slow
# part), then each rung up is probed (layer_choice.py: the temporal layers back, then each
# layer; after trial_wait, 4 s doubled by each failed probe up to 16 s, then 4 s of probe;
# a link without loss for 8 s is probed whatever the REMB says).
CLIMB_BOUND = 120
JS_FREEZES = """async () => {
  let n = 0;
  for (const pc of window.__peerConnections || []) {
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') n += s.freezeCount || 0;
    });
  }
  return n;
}"""


@pytest.mark.flaky(reruns=2)
def test_a_weak_link_gets_a_smaller_picture_and_the_others_keep_the_full_one(
    netns: None,
    playwright_instance: Any,
    media_dir: Path,
    tmp_path: Path,
    busy_clip: Path,
) -> None:
    # All three publish simulcast: Alice the busy camera, Bob and Carol a flat one (on this
    # 2-core machine three browsers encoding moving detail in three layers each starve
    # each other: Chromium's CPU adaptation then drops their upper layers; a flat picture's
    # upper layers cost so little that Chromium, application-limited, may pause them). Each
    # is in a namespace of their own behind the test's bridge, so that Carol's link alone
    # can be throttled (tc tbf on her veth's end at the bridge).
    require_topology("tc")
    with Topology() as topology:
        hosts = {name: topology.host(name.lower()) for name in ("Alice", "Bob", "Carol")}
        server = start_server(tmp_path, host=topology.gateway)
        people: list[Participant] = []
        try:
            room_id = server.create_room("sfu")

            def join(name: str, video: Path) -> Participant:
                p = launch_in_host(
                    playwright_instance,
                    hosts[name],
                    server.url,
                    name,
                    media_dir,
                    workdir=tmp_path,
                    video=video,
                    # Tiles of three taller than the 540-line layer: the full one fits.
                    viewport=(1600, 1000),
                    init_scripts=(KEEP_PEER_CONNECTIONS,),
                )
                people.append(p)
                p.page.goto(f"/room/{room_id}?name={name}&raw_audio=1")
                p.wait_joined()
                return p

            alice = join("Alice", busy_clip)
            bob = join("Bob", write_still_y4m(tmp_path / "bob.y4m", 80))
            carol = join("Carol", write_still_y4m(tmp_path / "carol.y4m", 160))
            for viewer in (bob, carol):
                wait_width(viewer, "Alice", 960, f"{viewer.name} on Alice's full layer", 60)

            hosts["Carol"].throttle(THROTTLE_KBIT)
            throttled = time.monotonic()
            wait_layer(server, room_id, carol, alice, 0, "bandwidth", timeout=60)
            wait_width(carol, "Alice", 240, "Carol's picture of Alice on the lowest layer")
            print(f"Carol on Alice's lowest layer {time.monotonic() - throttled:.1f} s after")
            # Carol's pictures keep moving, without many freezes (once the queue the
            # throttle built has drained: a few seconds of retransmissions); Bob keeps
            # Alice's full layer, and Alice keeps sending every layer (her bitrate no longer
            # follows the slowest subscriber).
            for n in ("Alice", "Bob"):
                wait_until(lambda n=n: frames_advance(carol, n), timeout=30, what=f"{n} moving")
            start = {n: tile(carol, n) or {} for n in ("Alice", "Bob")}
            freezes = carol.eval(JS_FREEZES)
            carol.page.wait_for_timeout(8000)
            end = {n: tile(carol, n) or {} for n in ("Alice", "Bob")}
            froze = carol.eval(JS_FREEZES) - freezes
            for n in ("Alice", "Bob"):
                moved = end[n].get("frames", 0) - start[n].get("frames", 0)
                # (At least 3.75 fps: the base temporal layer of a 15 fps camera; a probe
                # for a bigger layer may hold the picture for a moment.)
                assert moved >= 10, (n, start, end)
            print("Carol's freezes in 8 s throttled:", froze)
            assert froze <= 4, froze
            # Carol's tiles say why their pictures are smaller.
            quality = carol.tile("Alice").get_by_test_id("quality")
            wait_until(
                lambda: (
                    "smaller picture for your connection" in (quality.get_attribute("title") or "")
                ),
                timeout=20,
                what="Carol's tile of Alice saying its picture is reduced",
            )
            # (On this 2-core machine three browsers' load can make Bob's estimate dip: he
            # may be down for a moment, and is back on the full layer soon.)
            wait_layer(server, room_id, bob, alice, 2, None, timeout=30)
            wait_width(bob, "Alice", 960, "Bob on Alice's full layer", 10)
            wait_layer(server, room_id, carol, alice, 0, None, timeout=20)
            assert frames_advance(bob, "Alice")
            media = server.room_media(room_id)
            video = [p for p in media["producers"] if p["layers"]]
            assert len(video) == 3, video
            alices = next(p for p in video if p["userId"] == alice.user_id())
            assert all(x["active"] for x in alices["layers"]), alices
            # What Alice sends is not held to what Carol can take.
            carols = consumer_of(server, room_id, carol.user_id(), alice.user_id())
            sent = sum(x["bitrate"] for x in alices["layers"])
            assert sent > 4 * carols["rate"], (sent, carols, alices)

            hosts["Carol"].unthrottle()
            lifted = time.monotonic()
            wait_layer(server, room_id, carol, alice, 2, None, timeout=CLIMB_BOUND)
            wait_width(carol, "Alice", 960, "Carol back on Alice's full layer", 10)
            print(f"Carol climbed back in {time.monotonic() - lifted:.1f} s")
            assert frames_advance(carol, "Alice")

            def best_of_alice_for_all() -> bool:
                # Everyone gets Alice's best layer again. (Bob's and Carol's flat
                # pictures' layers cost so little that a subscriber's REMB, 1.5x what it
                # receives, shows no room for them next to two voices: they are climbed
                # to by probes, which can take a minute; not checked here.)
                media = server.room_media(room_id)
                return all(
                    c["layerReason"] == "best"
                    for c in media["consumerList"]
                    if c["kind"] == "video" and c["userId"] == alice.user_id()
                )

            wait_until(best_of_alice_for_all, timeout=30, what="Alice's best layer for all")
            try:
                wait_until(
                    lambda: "for your connection" not in (quality.get_attribute("title") or "x"),
                    timeout=20,
                    what="Carol's tile of Alice no longer saying it is reduced",
                )
            except BaseException:
                print(consumer_of(server, room_id, carol.user_id(), alice.user_id()))
                print(quality.get_attribute("title"), carol.console[-20:])
                raise
        except BaseException:
            dump_consumers(server, room_id)
            raise
        finally:
            for p in people:
                p.close()
            stop_server(server)


async def _observe(url: str, room_id: str, packets: list[tuple], seconds: float) -> None:
    """An aiortc subscriber (sfu.loadtest's peer over Socket.IO) that records every video
    packet it receives, as it arrives, through the server's own receive tap."""
    router = SocketIORouter(url, room_id)
    taps: list[ReceiverTap] = []

    class Observer(SfuPeer):
        def _on_track(self, track: Any) -> None:
            assert self.subscribe_pc is not None
            if track.kind != "video":
                return
            receiver = next(
                t.receiver for t in self.subscribe_pc.getTransceivers() if t.receiver.track is track
            )

            def on_packet(p: Any, key: bool) -> None:
                packets.append((p.ssrc, p.sequence_number, p.timestamp, bytes(p.payload[:40]), key))

            taps.append(ReceiverTap(receiver, "video", 1.0, on_packet))

    peer = Observer(router, "observer")
    try:
        await peer.join()
        await asyncio.sleep(seconds)
    finally:
        await peer.close()
        await router.close()


@pytest.mark.flaky(reruns=2)  # Alice's browser may stall on a busy machine (see above)
def test_an_aiortc_subscriber_sees_one_continuous_stream_through_switches(
    netns: None, switching: tuple[ServerProcess, str, Participant]
) -> None:
    # Every packet an aiortc subscriber gets while the test hook switches it every 2 s
    # between Alice's three layers and the top one's base temporal layer (layer_choice.forced):
    # one SSRC, sequence numbers without a gap, timestamps that never step back, VP8
    # picture ids that count up by one per picture and a TL0PICIDX that never jumps
    # (across dropped pictures too); the pictures' sizes show every layer came, and runs
    # of base-layer pictures (TID 0, which the encoder never sends twice in a row: its
    # pattern is 0 2 1 2) show the upper temporal layers were dropped.
    server, room_id, alice = switching
    packets: list[tuple] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(_observe(server.url, room_id, packets, 16))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert not errors and not thread.is_alive(), errors
    seen: set[int] = set()
    stream = []
    for packet in packets:  # retransmissions and probes come twice: the first counts
        if packet[1] not in seen:
            seen.add(packet[1])
            stream.append(packet)
    assert len(stream) > 300, len(stream)
    assert {p[0] for p in stream} == {stream[0][0]}, "more than one SSRC"
    gaps = [
        (a[1], b[1])
        for a, b in zip(stream, stream[1:], strict=False)
        if (b[1] - a[1]) & 0xFFFF != 1
    ]
    assert not gaps, gaps[:10]
    pictures = []
    for _ssrc, seq, timestamp, head, key in stream:
        d = vp8.parse(head)
        if d is not None and d.starts_picture:
            size = vp8_size(head[d.size :]) if key else None
            pictures.append((seq, timestamp, d.picture_id, d.tl0picidx, size, d.tid))
    assert pictures[0][4] is not None, "the stream does not start at a keyframe"
    for a, b in zip(pictures, pictures[1:], strict=False):
        assert (b[2] - a[2]) & 0x7FFF == 1, ("picture id", a, b)
        assert (b[3] - a[3]) & 0xFF in (0, 1), ("TL0PICIDX", a, b)
        # Forward, and never by more than a stall of the publisher (3 s).
        assert 0 < (b[1] - a[1]) & 0xFFFFFFFF < 3 * 90_000, ("timestamp", a, b)
    widths = {p[4][0] for p in pictures if p[4]}
    assert {240, 480, 960} <= widths, widths
    assert {p[5] for p in pictures} >= {0, 1, 2}, "the publisher sends no temporal layers"
    run = longest = 0
    for p in pictures:
        run = run + 1 if p[5] == 0 and p[4] is None else 0
        longest = max(longest, run)
    # (Three in a row never happen without drops; a 2 s phase at 3.75 base pictures a
    # second holds about seven, fewer when the publisher's encoder is short of CPU.)
    assert longest >= 3, ("no run of base-layer pictures", [p[5] for p in pictures])
