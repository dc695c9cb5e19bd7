"""TURN as operators run it: a real coturn with shared-secret credentials (issue #14).

The topology (tests/support/topology.py): the server listens on the server segment's
gateway; coturn runs on a "public" host of that segment with ``use-auth-secret``; Alice is
behind a NAT, Carol behind a NAT whose firewall drops every UDP packet. Alice's Chromium is
made to relay over UDP only (``iceTransportPolicy: "relay"``, the TURN/UDP URLs), so
whatever she connects through is TURN/UDP; Carol can only get out through TURN/TCP. Both
meet in a P2P room and in an SFU room, with the credentials the server minted from
``ice.turn_secret``, and the selected candidate pairs of their connections show how. A
credential past its expiry is refused by coturn, and no static credential or secret leaves
through an unauthenticated route or the log.

Run: ``scripts/netns-run .venv/bin/python -m pytest tests/e2e/test_turn.py`` (root, nft,
coturn's ``turnserver``, Chromium, the built web app).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sfu.media.turn import mint
from tests.e2e.conftest import (
    Participant,
    ServerProcess,
    assert_hears,
    assert_sees,
    http_json,
    start_server,
    stop_server,
    wait_until,
)
from tests.e2e.hosts import launch_in_host, require_topology
from tests.support.topology import Host, Topology

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]

SECRET = "e2e-Turn-Secret-61a9"  # coturn's static-auth-secret and the server's ice.turn_secret
STATIC_USER, STATIC_PASS = "static-user", "e2e-Static-Pass-c07d"
REALM = "sfu.test"
RELAY_PORTS = (49160, 49199)

# What docs/deployment.md recommends, on test addresses (no TLS: the test has no certificate).
COTURN_CONF = """\
listening-ip={ip}
relay-ip={ip}
listening-port=3478
min-port={min_port}
max-port={max_port}
realm={realm}
use-auth-secret
static-auth-secret={secret}
fingerprint
no-multicast-peers
no-tls
no-dtls
no-cli
no-rfc5780
no-stun-backward-compatibility
pidfile={dir}/turnserver.pid
userdb={dir}/turndb
log-file=stdout
simple-log
verbose
"""

# Keeps every RTCPeerConnection the app makes (for getStats). With __udpRelayOnly: relay
# candidates only, from the TURN/UDP URLs only (Chromium may otherwise nominate a TURN/TCP
# relay, which works too; this one is to prove TURN/UDP).
CAPTURE = """
(() => {
  const Native = window.RTCPeerConnection;
  const udpOnly = (servers) => (servers || [])
    .map((s) => ({...s, urls: [].concat(s.urls).filter((u) => !u.includes('transport=tcp'))}))
    .filter((s) => s.urls.length);
  window.__pcs = [];
  window.RTCPeerConnection = class extends Native {
    constructor(config, ...rest) {
      const c = config || {};
      super(window.__udpRelayOnly
        ? {...c, iceServers: udpOnly(c.iceServers), iceTransportPolicy: 'relay'} : c, ...rest);
      window.__pcs.push(this);
    }
  };
})();
"""

# The selected candidate pair and the configuration of each open connection.
JS_PAIRS = """async () => {
  const out = [];
  for (const pc of window.__pcs || []) {
    if (pc.connectionState === 'closed') continue;
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((r) => {
      if (r.type === 'transport' && r.selectedCandidatePairId) {
        pair = stats.get(r.selectedCandidatePairId);
      }
    });
    const local = pair && stats.get(pair.localCandidateId);
    const remote = pair && stats.get(pair.remoteCandidateId);
    out.push({
      state: pc.connectionState,
      local: local ? {type: local.candidateType, relayProtocol: local.relayProtocol || null,
                      url: local.url || null} : null,
      remote: remote ? {type: remote.candidateType, address: remote.address} : null,
      bytesReceived: pair ? pair.bytesReceived : 0,
      iceServers: pc.getConfiguration().iceServers,
    });
  }
  return out;
}"""

# Gathers relay candidates with one TURN server; returns them and the gathering errors.
JS_GATHER = """async ([server, timeoutMs]) => {
  const pc = new RTCPeerConnection({iceServers: [server], iceTransportPolicy: 'relay'});
  const found = {relay: [], errors: []};
  pc.onicecandidate = (e) => {
    if (e.candidate && e.candidate.candidate) found.relay.push(e.candidate.candidate);
  };
  pc.onicecandidateerror = (e) => {
    found.errors.push({code: e.errorCode, text: e.errorText, url: e.url});
  };
  pc.createDataChannel('probe');
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    pc.onicegatheringstatechange = () => {
      if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); }
    };
  });
  pc.close();
  return found;
}"""


@dataclass
class TurnWorld:
    net: Topology
    turn: Host
    coturn_log: Path
    server: ServerProcess
    work: Path
    people: dict[str, Participant] = field(default_factory=dict)

    def turn_url(self, transport: str, port: int = 3478) -> str:
        return f"turn:{self.turn.address}:{port}?transport={transport}"

    def coturn_text(self) -> str:
        return self.coturn_log.read_text(errors="replace")


def _coturn_ready(address: str, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, 3478), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def world(
    playwright_instance: Any, media_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TurnWorld]:
    require_topology("turnserver")  # after playwright_instance's namespace check
    work = tmp_path_factory.mktemp("turn")
    net = Topology()
    coturn: subprocess.Popen[bytes] | None = None
    server: ServerProcess | None = None
    people: dict[str, Participant] = {}
    try:
        turn = net.host("turn")
        conf = work / "turnserver.conf"
        conf.write_text(
            COTURN_CONF.format(
                ip=turn.address,
                min_port=RELAY_PORTS[0],
                max_port=RELAY_PORTS[1],
                realm=REALM,
                secret=SECRET,
                dir=work,
            )
        )
        coturn_log = work / "coturn.log"
        with coturn_log.open("wb") as log:
            coturn = subprocess.Popen(
                turn.command("turnserver", "-c", str(conf)), stdout=log, stderr=subprocess.STDOUT
            )
        if not _coturn_ready(turn.address):
            pytest.fail(f"coturn did not start:\n{coturn_log.read_text()[-2000:]}")
        ice_servers = [
            {"urls": [f"turn:{turn.address}:3478?transport={t}" for t in ("udp", "tcp")]},
            # Static credentials for a server that is not there: they must reach joined
            # participants and nobody else.
            {
                "urls": [f"turn:{turn.address}:3479?transport=tcp"],
                "username": STATIC_USER,
                "credential": STATIC_PASS,
            },
        ]
        env = {
            "SFU_ICE__SERVERS": json.dumps(ice_servers),
            "SFU_ICE__TURN_SECRET": SECRET,
            "SFU_ICE__HOST_ADDRESSES": json.dumps([net.gateway]),
        }
        server = start_server(work, env, host=net.gateway)
        world = TurnWorld(net, turn, coturn_log, server, work, people)
        people["Alice"] = _launch(playwright_instance, media_dir, world, "Alice",
                                  net.behind_nat("alice"), udp_relay=True)  # fmt: skip
        people["Carol"] = _launch(playwright_instance, media_dir, world, "Carol",
                                  net.behind_nat("carol", block_udp=True))  # fmt: skip
        yield world
    finally:
        for p in people.values():
            p.close()
        if server is not None:
            stop_server(server)
        if coturn is not None:
            coturn.terminate()
            coturn.wait(timeout=10)
        net.close()


def _launch(
    pw: Any, media_dir: Path, world: TurnWorld, name: str, host: Host, udp_relay: bool = False
) -> Participant:
    relay_only = f"window.__udpRelayOnly = {'true' if udp_relay else 'false'};"
    return launch_in_host(
        pw, host, world.server.url, name, media_dir, workdir=world.work,
        init_scripts=(relay_only, CAPTURE),
    )  # fmt: skip


def pairs(p: Participant) -> list[dict[str, Any]]:
    return p.eval(JS_PAIRS)


def meet(world: TurnWorld, mode: str) -> str:
    """Alice and Carol in a new room of ``mode``, seeing and hearing each other."""
    room = world.server.create_room(mode)
    for p in world.people.values():
        p.page.goto(f"/room/{room}?name={p.name}&raw_audio=1")
    for p in world.people.values():
        p.wait_joined()
    alice, carol = world.people["Alice"], world.people["Carol"]
    assert_sees(carol, "Alice", timeout=45)
    assert_sees(alice, "Carol", timeout=45)
    assert_hears(carol, "Alice")
    assert_hears(alice, "Carol")
    return room


def connected_through(p: Participant, relay_protocol: str, count: int) -> list[dict[str, Any]]:
    """Waits until ``count`` connections are up and every one goes through a TURN relay
    reached over ``relay_protocol``; returns them."""

    def check() -> list[dict[str, Any]] | None:
        up = [x for x in pairs(p) if x["state"] == "connected" and x["local"]]
        ok = len(up) >= count and all(
            x["local"]["type"] == "relay" and x["local"]["relayProtocol"] == relay_protocol
            for x in up
        )
        return up if ok else None

    return wait_until(
        check,
        timeout=20,
        what=f"{p.name}: {count} connections via TURN/{relay_protocol}: {pairs(p)}",
    )


def minted_expiry(servers: list[dict[str, Any]], identity: str) -> int:
    """The expiry in the minted username of ``servers`` (the first turn: entry of port 3478)."""
    entry = next(s for s in servers if any(":3478?" in u for u in s["urls"]))
    match = re.fullmatch(rf"(\d+):{re.escape(identity)}", entry["username"])
    assert match, entry
    return int(match[1])


SFU_ALLOCATED = r"user <\d+:sfu>: incoming packet ALLOCATE processed, success"


def allocated(world: TurnWorld, username_pattern: str) -> bool:
    """coturn accepted an ALLOCATE of a user matching the pattern."""
    return bool(
        re.search(
            rf"user <{username_pattern}>: incoming packet ALLOCATE processed, success",
            world.coturn_text(),
        )
    )


def test_p2p_room_meets_through_turn_tcp_and_udp(world: TurnWorld) -> None:
    meet(world, "p2p")
    alice, carol = world.people["Alice"], world.people["Carol"]
    (carol_link,) = connected_through(carol, "tcp", 1)
    (alice_link,) = connected_through(alice, "udp", 1)
    # Each with credentials minted for itself, and coturn took them.
    for p, link in ((carol, carol_link), (alice, alice_link)):
        user_id = p.user_id()
        expires = minted_expiry(link["iceServers"], user_id)
        assert abs(expires - (time.time() + 86400)) < 120  # ice.turn_ttl_seconds' default
        assert allocated(world, rf"\d+:{re.escape(user_id)}"), world.coturn_text()[-3000:]


def test_renewed_credentials_serve_new_connections(world: TurnWorld) -> None:
    """A live ``ice.turn_ttl_seconds`` change pushes ``ice-servers`` with new credentials;
    Carol's next connection (Alice rejoins) uses them, not those of her join answer."""
    alice, carol = world.people["Alice"], world.people["Carol"]
    if not any(x["state"] == "connected" for x in pairs(carol)):
        meet(world, "p2p")
    world.server.admin("PATCH", "/api/settings", {"changes": {"ice.turn_ttl_seconds": 7200}})
    alice.page.reload()
    alice.wait_joined()
    assert_sees(carol, "Alice", timeout=45)
    assert_sees(alice, "Carol", timeout=45)
    (link,) = connected_through(carol, "tcp", 1)
    expires = minted_expiry(link["iceServers"], carol.user_id())
    assert abs(expires - (time.time() + 7200)) < 120, expires
    world.server.admin("PATCH", "/api/settings", {"changes": {"ice.turn_ttl_seconds": 86400}})


def test_sfu_room_meets_through_turn_tcp_and_udp(world: TurnWorld) -> None:
    room = meet(world, "sfu")
    alice, carol = world.people["Alice"], world.people["Carol"]
    # Publish and subscribe connections, both through the relay.
    connected_through(carol, "tcp", 2)
    connected_through(alice, "udp", 2)
    media = world.server.room_media(room)
    assert media["forwardedFrames"] > 0, media
    # The SFU's own candidates came with credentials minted for "sfu".
    assert re.search(SFU_ALLOCATED, world.coturn_text()), world.coturn_text()[-3000:]


def test_sfu_with_host_candidates_only_is_reached_through_the_relay(world: TurnWorld) -> None:
    """``ice.sfu_servers = []``: the SFU offers its host candidate only; a browser that can
    only relay reaches it from coturn's relay address."""
    world.server.admin("PATCH", "/api/settings", {"changes": {"ice.sfu_servers": []}})
    sfu_allocations = len(re.findall(SFU_ALLOCATED, world.coturn_text()))
    try:
        meet(world, "sfu")
        for p, protocol in ((world.people["Carol"], "tcp"), (world.people["Alice"], "udp")):
            links = connected_through(p, protocol, 2)
            assert all(x["remote"]["type"] in ("host", "prflx") for x in links), links
        # The SFU asked coturn for nothing this time.
        assert len(re.findall(SFU_ALLOCATED, world.coturn_text())) == sfu_allocations
    finally:
        world.server.admin("PATCH", "/api/settings", {"changes": {"ice.sfu_servers": None}})


def test_credentials_reach_participants_only(world: TurnWorld) -> None:
    carol = world.people["Carol"]
    if not any(x["state"] == "connected" for x in pairs(carol)):
        meet(world, "p2p")
    # The joined participant has them all (the app took them from its join answer) ...
    configs = [x["iceServers"] for x in pairs(carol)]
    static = [s for c in configs for s in c if s.get("username") == STATIC_USER]
    assert static and all(s["credential"] == STATIC_PASS for s in static), configs
    minted = {s["credential"] for c in configs for s in c if s.get("username", "").count(":")}
    assert minted, configs
    # ... and nobody else: the public config, the admin view and the log have none of them.
    status, body = http_json("GET", f"{world.server.url}/api/config")
    assert status == 200 and body["iceServers"] == [], body
    public = json.dumps(body)
    settings = json.dumps(world.server.admin("GET", "/api/settings"))
    assert "********" in settings
    log = world.server.log_path.read_text(errors="replace")
    assert "settings changed: ice.turn_ttl_seconds=" in log  # the live change was logged
    for secret in (STATIC_PASS, SECRET, *minted):
        assert secret not in public and secret not in settings and secret not in log, secret


def test_expired_credentials_are_refused_by_coturn(world: TurnWorld) -> None:
    carol = world.people["Carol"]
    carol.page.goto("/")
    url = world.turn_url("tcp")
    expired = mint(SECRET, "expired-carol", -60)
    got = carol.eval(
        JS_GATHER,
        [{"urls": [url], "username": expired.username, "credential": expired.credential}, 10_000],
    )
    assert got["relay"] == [], got
    assert any(e["code"] == 401 for e in got["errors"]), got
    assert f"Cannot find credentials of user <{expired.username}>" in world.coturn_text()
    # The same request with a live credential gets a relay: the refusal was the expiry.
    fresh = mint(SECRET, "fresh-carol", 600)
    got = carol.eval(
        JS_GATHER,
        [{"urls": [url], "username": fresh.username, "credential": fresh.credential}, 10_000],
    )
    assert any(" typ relay " in c for c in got["relay"]), got
