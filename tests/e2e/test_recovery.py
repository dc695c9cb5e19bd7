"""Cut links heal by themselves: a participant whose link is cut for 10 s or 40 s sees the
others and is seen again soon after the link is back, in a P2P and in an SFU room, without
reloading the page.

Each Chromium runs in a network namespace of its own (tests/support/topology.py) and reaches
the server on the topology's gateway; ``Host.cut()`` drops every packet of one participant's
namespace (WebRTC and the signaling socket alike). A 40 s cut outlasts the Engine.IO ping
timeout, so the server drops that socket and the app reconnects and rejoins; a 10 s cut
usually does too (5 s interval + 5 s timeout). "Seen again" is a tile showing the persona's
colour *with frames advancing*, so a frozen last frame does not count.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests.e2e import conftest as e2e
from tests.e2e.conftest import (
    PERSONAS,
    Participant,
    ServerProcess,
    assert_hears,
    colour_close,
    start_server,
    stop_server,
    wait_until,
)
from tests.e2e.hosts import STAMP_CONSOLE, launch_in_host, require_topology
from tests.support.topology import Host, Topology

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]

#: How soon after the restore both must see each other live again: the issue's 5 s. Measured
#: with only this file running: P2P 0.6-2.0 s, SFU 0.7-2.0 s. Under heavy parallel load (load
#: average 8-15 on 2 cores) SFU heals took up to 8.7 s: the rejoin, two new aiortc
#: connections and the first forwarded keyframe all wait for CPU.
HEAL_BOUND_S = {"p2p": 5.0, "sfu": 5.0}

JS_FRAMES = """(name) => {
  const v = document.querySelector(`video[aria-label="${CSS.escape(name)}"]`);
  if (!v || !v.srcObject) return null;
  return v.getVideoPlaybackQuality().totalVideoFrames;
}"""


@pytest.fixture(scope="module")
def net(playwright_instance: Any) -> Iterator[Topology]:
    require_topology()  # after playwright_instance's namespace check
    with Topology() as topology:
        yield topology


@pytest.fixture(scope="module")
def server(net: Topology, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # A small composite: the recording test runs on a loaded 2-core machine.
    small = {"SFU_RECORDING__WIDTH": "640", "SFU_RECORDING__HEIGHT": "360"}
    small["SFU_RECORDING__FPS"] = "15"
    s = start_server(tmp_path_factory.mktemp("recovery-server"), small, host=net.gateway)
    yield s
    stop_server(s)


class Browsers:
    """Participants, each a Chromium inside a topology host of its own."""

    def __init__(self, pw: Any, server: ServerProcess, net: Topology, media_dir: Path) -> None:
        self.pw, self.server, self.net, self.media_dir = pw, server, net, media_dir
        self.made: list[Participant] = []
        self.hosts: dict[str, Host] = {}

    def join(self, name: str, room_id: str) -> Participant:
        host = self.net.host(name.lower())
        self.hosts[name] = host
        p = launch_in_host(
            self.pw,
            host,
            self.server.url,
            name,
            self.media_dir,
            viewport=(640, 480),
            init_scripts=(STAMP_CONSOLE,),
        )
        self.made.append(p)
        p.page.goto(f"/room/{room_id}?name={name}&raw_audio=1")
        p.wait_joined()
        return p

    def close(self) -> None:
        for p in self.made:
            p.close()


@pytest.fixture(scope="module")
def browsers(
    playwright_instance: Any, server: ServerProcess, net: Topology, media_dir: Path
) -> Iterator[Browsers]:
    b = Browsers(playwright_instance, server, net, media_dir)
    yield b
    b.close()


def live_colour(viewer: Participant, name: str) -> bool:
    """``viewer``'s tile of ``name`` shows that persona's colour and new frames keep coming."""
    if not colour_close(viewer.video_colour(name), PERSONAS[name].rgb):
        return False
    before = viewer.eval(JS_FRAMES, name)
    time.sleep(0.2)
    after = viewer.eval(JS_FRAMES, name)
    return before is not None and after is not None and after > before


def both_see(a: Participant, b: Participant) -> bool:
    return live_colour(a, b.name) and live_colour(b, a.name)


def seen_again_after(viewer: Participant, name: str, since: float, timeout: float = 30) -> float:
    """Seconds from ``since`` to the start of the first check that found ``name`` live on
    ``viewer``'s screen (the frames it saw came at or after that moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        start = time.monotonic()
        if live_colour(viewer, name):
            return start - since
        time.sleep(0.05)
    pytest.fail(f"{viewer.name} does not see {name} {timeout:.0f} s after the restore")


def cut_and_heal(browsers: Browsers, stays: Participant, cut: Participant, seconds: float) -> float:
    """Cuts ``cut``'s link for ``seconds``, restores it, returns how long until both see
    each other live again (fails past 30 s)."""
    wait_until(lambda: both_see(stays, cut), what=f"{stays.name} and {cut.name} to see each other")
    host = browsers.hosts[cut.name]
    for p in (stays, cut):
        p.console.clear()
    cut_at = time.time()
    host.cut()
    try:
        time.sleep(seconds)
        # The cut really broke the media: nothing new reaches the one who stayed.
        assert not live_colour(stays, cut.name), f"{stays.name} still gets {cut.name}'s video"
    finally:
        host.restore()
    restored = time.monotonic()
    restored_at = time.time()
    # Each direction on its own, so one's polling does not delay the other's measurement.
    seen = seen_again_after(stays, cut.name, restored)
    sees = seen_again_after(cut, stays.name, restored)
    healed = max(seen, sees)
    if healed > 5.0:  # the page's own account of where the time went
        print(f"{cut_at:.1f} cut, {restored_at:.1f} restored")
        for p in (stays, cut):
            print(f"--- {p.name}", *p.console, sep="\n  ")
    print(
        f"{cut.name}: {seconds:.0f} s cut healed {healed:.1f} s after the restore"
        f" (seen again {seen:.1f} s, sees again {sees:.1f} s)"
    )
    return healed


def check_heal(mode: str, healed: float, seconds: float, people: list[Participant]) -> None:
    for p in people:
        assert p.page.url.endswith("raw_audio=1"), "the page was reloaded"
    bound = HEAL_BOUND_S[mode]
    assert healed <= bound, f"a {seconds:.0f} s cut healed only after {healed:.1f} s"


# -- P2P ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def p2p(browsers: Browsers, server: ServerProcess) -> tuple[Participant, Participant]:
    room_id = server.create_room("p2p")
    return browsers.join("Alice", room_id), browsers.join("Bob", room_id)


@pytest.mark.parametrize("seconds", [10, 40])
def test_p2p_link_cut_heals(
    browsers: Browsers, p2p: tuple[Participant, Participant], seconds: int
) -> None:
    alice, bob = p2p
    healed = cut_and_heal(browsers, alice, bob, seconds)
    assert_hears(alice, "Bob", timeout=10)
    assert_hears(bob, "Alice", timeout=10)
    check_heal("p2p", healed, seconds, [alice, bob])


# -- SFU ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sfu(browsers: Browsers, server: ServerProcess) -> tuple[str, Participant, Participant]:
    room_id = server.create_room("sfu")
    return room_id, browsers.join("Carol", room_id), browsers.join("Dave", room_id)


def forwarding(server: ServerProcess, room_id: str) -> dict[str, Any] | None:
    """The router's counters once both publish audio and video to each other, all sending."""
    m = server.room_media(room_id)
    ok = m["consumers"] == 4 and all(c["sending"] for c in m["consumerList"])
    return m if ok else None


@pytest.mark.parametrize("seconds", [10, 40])
def test_sfu_link_cut_heals(
    browsers: Browsers,
    server: ServerProcess,
    sfu: tuple[str, Participant, Participant],
    seconds: int,
) -> None:
    room_id, carol, dave = sfu
    wait_until(lambda: forwarding(server, room_id), what="2 x 2 consumers sending")
    healed = cut_and_heal(browsers, carol, dave, seconds)
    # The server side healed too: Dave's consumers are back and frames are forwarded again
    # (the counter is the live consumers' sum: it starts again with new connections).
    after = wait_until(lambda: forwarding(server, room_id), what="2 x 2 consumers again")
    frames = after["forwardedFrames"]
    wait_until(
        lambda: server.room_media(room_id)["forwardedFrames"] > frames,
        what="forwarded frames growing",
    )
    assert_hears(carol, "Dave", timeout=10)
    assert_hears(dave, "Carol", timeout=10)
    check_heal("sfu", healed, seconds, [carol, dave])


def colour_share(frame: Any, rgb: tuple[int, int, int], tol: int = 40) -> float:
    """The fraction of a decoded frame's pixels within ``tol`` of ``rgb`` on every channel."""
    pixels = frame.to_ndarray(format="rgb24").astype(int)
    near = (abs(pixels - np.array(rgb)) <= tol).all(axis=2)
    return float(near.mean())


def test_sfu_recording_picks_the_stream_up_again(
    browsers: Browsers,
    server: ServerProcess,
    sfu: tuple[str, Participant, Participant],
    tmp_path: Path,
) -> None:
    """A server recording running across Dave's 10 s cut shows him again after the heal."""
    room_id, carol, dave = sfu
    wait_until(lambda: forwarding(server, room_id), what="2 x 2 consumers sending")
    started = server.admin("POST", f"/api/rooms/{room_id}/recording", {})
    recording_id = started["recordingId"]
    began = time.monotonic()
    time.sleep(3)
    cut_and_heal(browsers, carol, dave, 10)
    healed_at = time.monotonic() - began
    time.sleep(4)
    server.admin("DELETE", f"/api/rooms/{room_id}/recording")
    path = tmp_path / "healed.mp4"
    req = urllib.request.Request(f"{server.url}/api/recordings/{recording_id}/file")
    req.add_header("Authorization", f"Bearer {e2e.ADMIN_TOKEN}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        path.write_bytes(resp.read())
    dave_rgb = PERSONAS["Dave"].rgb
    before: list[float] = []
    after: list[float] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            t = float(frame.time or 0.0)
            if 1.0 <= t <= 3.0:
                before.append(colour_share(frame, dave_rgb))
            elif t >= healed_at + 1.0:
                after.append(colour_share(frame, dave_rgb))
    assert before and after, f"frames before {len(before)}, after the heal {len(after)}"
    # Dave's tile is about a quarter of a two-person grid; a few percent is his picture.
    assert max(before) > 0.05, f"Dave's colour before the cut: {max(before):.3f}"
    assert max(after[-10:]) > 0.05, (
        f"the recording does not show Dave again after the heal: {max(after):.3f}"
    )
