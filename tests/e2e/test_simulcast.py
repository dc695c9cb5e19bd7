"""Simulcast in real Chromium (#17): a camera published in three encodings, one forwarded
to each subscriber by the size of its tile, nothing to a hidden tile, and switches that
the subscriber's decoder never notices.

Alice's fake camera is a 960x540 picture with moving detail (a solid colour would cost the
encoder nothing); the app asks for 640x480, which Chromium crops and scales it to, and at
that size the app publishes the top two of the server's three layers (Chromium sends three
only from 540 lines up): "h" at 320x240 and "f" at 640x480.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e.conftest import (
    LaunchFn,
    Participant,
    ServerProcess,
    close_launched,
    start_server,
    stop_server,
    wait_until,
)

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
    def check() -> Any:
        t = tile(p, name)
        return t if t and t["width"] == width else None

    wait_until(check, timeout=timeout, what=what)


def consumer_of(server: ServerProcess, room_id: str, subscriber: str, user: str) -> dict:
    media = server.room_media(room_id)
    return next(
        c
        for c in media["consumerList"]
        if c["subscriber"] == subscriber and c["userId"] == user and c["kind"] == "video"
    )


def wait_layer(
    server: ServerProcess, room_id: str, bob: Participant, alice: Participant, layer: int, reason: str
) -> dict:
    """Waits until Bob's consumer of Alice's camera forwards ``layer`` for ``reason``."""

    def check() -> Any:
        c = consumer_of(server, room_id, bob.user_id(), alice.user_id())
        return c if (c.get("layer"), c.get("layerReason")) == (layer, reason) else None

    return wait_until(check, timeout=15, what=f"layer {layer} ({reason})")


@pytest.fixture
def busy_camera(media_dir: Path) -> list[str]:
    clip = media_dir / "busy-960x540.y4m"
    if not clip.exists():
        write_busy_y4m(clip)
    return [f"--use-file-for-fake-video-capture={clip}"]


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
        ("h", 320, 240),
        ("f", 640, 480),
    ], got

    # Bob's tile is bigger than 240 device pixels: the full layer.
    wait_width(bob, "Alice", 640, "Bob's big tile of Alice on the full layer")
    assert frames_advance(bob, "Alice")
    wait_layer(e2e_server, room_id, bob, alice, 1, "best")

    # A small tile (120 CSS pixels tall at a device pixel ratio of 1): the 240-line layer.
    bob.eval(JS_STYLE, ["Alice", "height: 120px; width: 160px"])
    wait_width(bob, "Alice", 320, "Bob's small tile of Alice on the half layer")
    wait_layer(e2e_server, room_id, bob, alice, 0, "tile")
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
    bob.eval(JS_STYLE, ["Alice", ""])
    wait_width(bob, "Alice", 640, "Bob's tile of Alice shown again, on the full layer")
    assert frames_advance(bob, "Alice")

    wait_layer(e2e_server, room_id, bob, alice, 1, "best")
