"""Three Chromium participants in an SFU room whose server uses only the UDP ports an
operator opened: one shared port (``ice.udp_port``), then a range (``ice.udp_port_range``).

They see and hear each other, and every UDP socket of the server process (``ss -uanp`` in
the namespace) is on the configured port or in the range.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_udp_ports
from tests.e2e.conftest import (
    CHROMIUM,
    PERSONAS,
    TIMEOUT_MS,
    LaunchFn,
    Participant,
    ServerProcess,
    assert_hears,
    assert_sees,
    chromium_args,
    media_files,
    start_server,
    stop_server,
    wait_until,
)
from tests.e2e.hosts import KEEP_PEER_CONNECTIONS

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]


@pytest.fixture(scope="module", params=["single port", "port range"])
def ports_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, range]]:
    """A server on one UDP port, or on a range of 8; and the ports it may use."""
    base = free_udp_ports(8)
    if request.param == "single port":
        allowed = range(base, base + 1)
        env = {"SFU_ICE__UDP_PORT": str(base)}
    else:
        allowed = range(base, base + 8)
        env = {"SFU_ICE__UDP_PORT_RANGE": f"{base}-{base + 7}"}
    server = start_server(tmp_path_factory.mktemp("server"), env_overrides=env)
    yield server, allowed
    stop_server(server)


@pytest.fixture
def ports_launch(
    playwright_instance: Any, ports_server: tuple[ServerProcess, range], media_dir: Path
) -> Iterator[LaunchFn]:
    """conftest's ``launch``, on this module's server; the browsers close after each test."""
    server, _ = ports_server
    made: list[Participant] = []

    def start(name: str, room: str) -> Participant:
        persona = PERSONAS[name]
        video, audio = media_files(media_dir, persona)
        browser = playwright_instance.chromium.launch(
            executable_path=CHROMIUM, args=chromium_args(video, audio)
        )
        context = browser.new_context(
            permissions=["camera", "microphone"],
            viewport={"width": 960, "height": 640},
            base_url=server.url,
        )
        context.set_default_timeout(TIMEOUT_MS)
        context.add_init_script(KEEP_PEER_CONNECTIONS)
        page = context.new_page()
        p = Participant(persona, browser, context, page)
        page.on("console", lambda msg: p.console.append(f"{msg.type}: {msg.text}"))
        made.append(p)
        page.goto(f"/room/{room}?name={name}&raw_audio=1")
        return p

    yield start
    for p in made:
        p.close()


def server_udp_ports(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every UDP socket of process ``pid``."""
    out = subprocess.run(["ss", "-uanpH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        if f"pid={pid}," not in line:
            continue
        local = line.split()[3]
        address, _, port = local.rpartition(":")
        found.append((address, int(port)))
    return found


JS_SELECTED_REMOTE_PORTS = """async () => {
  const ports = [];
  for (const pc of window.__peerConnections.filter((c) => c.connectionState === 'connected')) {
    const stats = await pc.getStats();
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const pair = stats.get(s.selectedCandidatePairId);
        const remote = pair && stats.get(pair.remoteCandidateId);
        if (remote) ports.push(remote.port);
      }
    });
  }
  return ports;
}"""


def test_three_participants_meet_on_the_opened_ports(
    netns: None, ports_server: tuple[ServerProcess, range], ports_launch: LaunchFn
) -> None:
    server, allowed = ports_server
    room = server.create_room("sfu")
    people = [ports_launch(name, room) for name in ("Alice", "Bob", "Carol")]
    for p in people:
        p.wait_joined()
    for viewer in people:
        for other in people:
            if other is not viewer:
                assert_sees(viewer, other.name)
                assert_hears(viewer, other.name)
    media = wait_until(
        lambda: (lambda m: m if m["connections"] == 6 else None)(server.room_media(room)),
        what="6 SFU connections",
    )
    assert media["participants"] == 3
    # Every UDP socket of the server is on the opened port(s).
    sockets = server_udp_ports(server.proc.pid)
    assert sockets, "the server has no UDP socket"
    outside = [(a, port) for a, port in sockets if port not in allowed]
    assert not outside, f"UDP sockets outside {allowed}: {outside}"
    if len(allowed) == 1:
        # One socket per host address, shared by all six connections.
        assert len(sockets) == len({a for a, _ in sockets}), sockets
    else:
        assert len(sockets) >= 6, sockets  # one per connection and host address
    log = server.log_tail(400)
    assert not re.search(r"no UDP port free|no host candidate", log), log


def test_browsers_reach_the_server_on_those_ports(
    netns: None, ports_server: tuple[ServerProcess, range], ports_launch: LaunchFn
) -> None:
    # The browsers' selected candidate pairs (their getStats) end on the opened port(s).
    server, allowed = ports_server
    room = server.create_room("sfu")
    people = [ports_launch(name, room) for name in ("Alice", "Bob")]
    for p in people:
        p.wait_joined()
    assert_sees(people[0], "Bob")
    assert_sees(people[1], "Alice")
    for p in people:
        remote = wait_until(
            lambda p=p: (lambda r: r if len(r) >= 2 else None)(p.eval(JS_SELECTED_REMOTE_PORTS)),
            what=f"{p.name}'s selected candidate pairs",
        )
        assert all(port in allowed for port in remote), (remote, allowed)
