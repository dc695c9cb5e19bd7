"""Network topologies for tests: namespaces, links, NATs and firewalls that exist only here.

Built inside the private namespace of ``scripts/netns-run`` (the *server segment*): a bridge
there holds ``10.231.<n>.1/24``, the "public internet" of the test. Hosts are further network
namespaces, each with a veth on that bridge, or behind a NAT namespace of their own::

    with Topology() as net:
        alice = net.host("alice")                       # public address 10.231.n.11
        bob = net.behind_nat("bob")                     # 192.168.k.2 behind a masquerading NAT
        carol = net.behind_nat("carol", block_udp=True) # her firewall drops all UDP
        alice.cut(); ...; alice.restore()               # drop every packet, then let them pass
        subprocess.run(bob.command("ping", "-c1", net.gateway))

Processes run in a host with :meth:`Host.command` (``nsenter --net``); a browser is started
there through :meth:`Host.wrapper`, a script that Playwright can use as ``executable_path``.
Everything is deleted by :meth:`Topology.close` (also at interpreter exit). Needs root and
``ip``/``nft``/``nsenter``; :func:`missing_tools` says what is absent.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

NETNS_DIR = Path("/run/netns")
_segments = itertools.count(1)


def missing_tools() -> list[str]:
    """Why a topology cannot be built here (empty when it can)."""
    missing = [tool for tool in ("ip", "nft", "nsenter") if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root")
    return missing


def _run(*cmd: str, netns: str | None = None, check: bool = True) -> str:
    full = [*(["nsenter", f"--net={NETNS_DIR / netns}", "--"] if netns else []), *cmd]
    done = subprocess.run(full, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(full)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def _nft(ruleset: str, netns: str | None) -> None:
    full = [*(["nsenter", f"--net={NETNS_DIR / netns}", "--"] if netns else []), "nft", "-f", "-"]
    done = subprocess.run(full, input=ruleset, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"nft in {netns or 'the server segment'}: {done.stderr.strip()}")


@dataclass
class Host:
    """A network namespace with one address; ``router`` is its NAT's namespace, if any."""

    name: str  # the namespace's name under /run/netns
    address: str  # its own address (private, when behind a NAT)
    public_address: str  # the address others see: its own, or its NAT's
    router: str | None = None
    # Its veth's end on the bridge, in the server segment (a public host's only).
    link: str | None = None
    _cut: bool = field(default=False, repr=False)

    def command(self, *cmd: str) -> list[str]:
        """``cmd`` as an argv that runs it inside this host's namespace."""
        return ["nsenter", f"--net={NETNS_DIR / self.name}", "--", *cmd]

    def run(self, *cmd: str, check: bool = True) -> str:
        return _run(*cmd, netns=self.name, check=check)

    def wrapper(self, executable: str, directory: Path | None = None) -> Path:
        """A script that runs ``executable`` with its arguments inside this host.

        Playwright drives the browser over a pipe, so only the page's traffic is here.
        """
        folder = directory or Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        path = folder / f"{self.name}-{Path(executable).name}"
        path.write_text(
            f'#!/bin/sh\nexec nsenter --net={NETNS_DIR / self.name} -- {executable} "$@"\n'
        )
        path.chmod(0o755)
        return path

    def cut(self) -> None:
        """Drops every packet in and out of this host (loopback excepted): a cut link."""
        if self._cut:
            return
        _nft(
            "table inet cut {\n"
            "  chain input { type filter hook input priority -300; policy drop;"
            " iif lo accept; }\n"
            "  chain output { type filter hook output priority -300; policy drop;"
            " oif lo accept; }\n"
            "}\n",
            self.name,
        )
        self._cut = True

    def throttle(self, kbit: int, burst_bytes: int = 16_000, latency_ms: int = 200) -> None:
        """Limits what reaches this host to ``kbit`` kbit/s (a token bucket, ``tc tbf``, on
        its link's end in the server segment: the host's downlink)."""
        assert self.link is not None, "only a public host can be throttled"
        _run("tc", "qdisc", "replace", "dev", self.link, "root", "tbf", "rate", f"{kbit}kbit",
             "burst", str(burst_bytes), "latency", f"{latency_ms}ms")  # fmt: skip

    def unthrottle(self) -> None:
        """Undoes :meth:`throttle`."""
        assert self.link is not None
        _run("tc", "qdisc", "del", "dev", self.link, "root", check=False)

    def restore(self) -> None:
        """Undoes :meth:`cut`."""
        if self._cut:
            _run("nft", "delete", "table", "inet", "cut", netns=self.name)
            self._cut = False


class Topology:
    """A test's namespaces around a bridge in the current (private) namespace."""

    def __init__(self) -> None:
        if missing := missing_tools():
            raise RuntimeError(f"cannot build network namespaces: missing {', '.join(missing)}")
        self.segment = next(_segments) % 200 + 20
        self.tag = f"t{os.getpid() % 100000}s{self.segment}"
        self.bridge = f"{self.tag}br"[:15]
        self.gateway = f"10.231.{self.segment}.1"  # the server segment's own address
        self.namespaces: list[str] = []
        self.links: list[str] = []
        self._hosts = itertools.count(11)
        self._lans = itertools.count(1)
        self._closed = False
        # A fixed MAC: a bridge without one takes its lowest port's, so adding a host could
        # change the gateway's MAC under the other hosts' ARP caches (their frames are then
        # dropped as addressed to another host: a host's whole link died that way).
        mac = f"02:00:0a:e7:{self.segment:02x}:01"
        _run("ip", "link", "add", self.bridge, "address", mac, "type", "bridge")
        self.links.append(self.bridge)
        _run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        # br_netfilter would send bridged frames through this namespace's forward chains.
        for table in ("iptables", "ip6tables", "arptables"):
            _run("sysctl", "-qw", f"net.bridge.bridge-nf-call-{table}=0", check=False)
        # "Public" hosts need a default route, or relaying to a private address fails with
        # ENETUNREACH (coturn then drops the allocation); here such packets just vanish.
        atexit.register(self.close)
        if "default" not in _run("ip", "route", "show", "default"):
            self._void_route()

    def _void_route(self) -> None:
        """A default route of the server segment to a namespace that drops everything.

        No ICMP comes back (a router with forwarding off would answer "unreachable").
        """
        void = self._namespace("void")
        outside = f"{self.tag}vd"[:15]
        _run("ip", "link", "add", outside, "type", "veth", "peer", "name", "in0", "netns", void)
        self.links.append(outside)
        _run("ip", "addr", "add", "10.231.250.1/30", "dev", outside)
        _run("ip", "link", "set", outside, "up")
        _run("ip", "addr", "add", "10.231.250.2/30", "dev", "in0", netns=void)
        _run("ip", "link", "set", "in0", "up", netns=void)
        _nft(
            "table inet void {\n"
            "  chain in { type filter hook prerouting priority -300; policy drop; }\n"
            "}\n",
            void,
        )
        _run("ip", "route", "add", "default", "via", "10.231.250.2")

    def _namespace(self, role: str) -> str:
        name = f"{self.tag}-{role}"
        _run("ip", "netns", "add", name)
        self.namespaces.append(name)
        _run("ip", "link", "set", "lo", "up", netns=name)
        return name

    def _public_link(self, netns: str) -> str:
        """A veth from ``netns`` to the bridge; returns the address given to it."""
        address = f"10.231.{self.segment}.{next(self._hosts)}"
        outside = f"{self.tag}v{len(self.links)}"[:15]
        _run("ip", "link", "add", outside, "type", "veth", "peer", "name", "wan0", "netns", netns)
        self.links.append(outside)
        _run("ip", "link", "set", outside, "master", self.bridge)
        _run("ip", "link", "set", outside, "up")
        _run("ip", "addr", "add", f"{address}/24", "dev", "wan0", netns=netns)
        _run("ip", "link", "set", "wan0", "up", netns=netns)
        _run("ip", "route", "add", "default", "via", self.gateway, netns=netns)
        return address

    def host(self, role: str) -> Host:
        """A host with a public address on the server segment."""
        netns = self._namespace(role)
        address = self._public_link(netns)
        return Host(netns, address, address, link=self.links[-1])

    def behind_nat(self, role: str, block_udp: bool = False) -> Host:
        """A host on a LAN of its own behind a masquerading NAT (not symmetric: Linux keeps
        source ports); ``block_udp``: the NAT's firewall drops every UDP packet from the LAN
        (TURN over TCP is then the only way out)."""
        router = self._namespace(f"{role}-nat")
        public = self._public_link(router)
        netns = self._namespace(role)
        lan = next(self._lans)
        address = f"192.168.{lan}.2"
        _run("ip", "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", netns,
             netns=router)  # fmt: skip
        _run("ip", "addr", "add", f"192.168.{lan}.1/24", "dev", "lan0", netns=router)
        _run("ip", "link", "set", "lan0", "up", netns=router)
        _run("ip", "addr", "add", f"{address}/24", "dev", "eth0", netns=netns)
        _run("ip", "link", "set", "eth0", "up", netns=netns)
        _run("ip", "route", "add", "default", "via", f"192.168.{lan}.1", netns=netns)
        _run("sysctl", "-qw", "net.ipv4.ip_forward=1", netns=router)
        firewall = 'iifname "lan0" meta l4proto udp drop;' if block_udp else ""
        _nft(
            "table ip nat {\n"
            "  chain postrouting { type nat hook postrouting priority 100; "
            'oifname "wan0" masquerade; }\n'
            "}\n"
            "table inet firewall {\n"
            f"  chain forward {{ type filter hook forward priority 0; {firewall} }}\n"
            "}\n",
            router,
        )
        return Host(netns, address, public, router=router)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for name in reversed(self.namespaces):
            _run("ip", "netns", "delete", name, check=False)
        for link in reversed(self.links):
            _run("ip", "link", "delete", link, check=False)

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
