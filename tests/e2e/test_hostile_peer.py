"""A hostile participant against a real browser (issue 12).

Alice joins a P2P room in Chromium. Mallory, a raw Socket.IO client in the same room, sends
her everything the abuse suite knows: signals JSON cannot carry (NaN, Infinity, 1e999, huge
integers, deep nesting, lone surrogates), binary attachments, reserved event names,
malformed packets, an attachment flood, and floods of signals, chat and unknown events. It
used to take one NaN: relayed in ``signal-receive``, it made socket.io-client drop Alice's
connection. What Alice must see: her page stays connected on the same websocket the whole
time (never "Reconnecting"), no frame she receives is unparseable, and a chat message sent
after the attack shows up in her chat. What the room sees: Alice never left (a watcher gets
no ``user-left`` or ``user-joined`` for her).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

import pytest

from tests.e2e.conftest import LaunchFn, ServerProcess, wait_until
from tests.support.raw_socketio import HOSTILE_JSON, Raw, RawPool, RawSocketIO

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]

T = TypeVar("T")

# Before the app loads: every websocket the page opens, its Engine.IO sid, whether it closed,
# and every Socket.IO frame JSON.parse (the browser's own parser) could not read.
WS_PROBE = r"""
(() => {
  const log = [], bad = [];
  window.__wsLog = log; window.__wsBad = bad;
  const Native = window.WebSocket;
  function Probe(url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    const entry = {url: String(url), open: false, closed: false, code: null, sid: null, n: 0};
    log.push(entry);
    ws.addEventListener('open', () => { entry.open = true; });
    ws.addEventListener('close', (e) => { entry.closed = true; entry.code = e.code; });
    ws.addEventListener('message', (e) => {
      entry.n += 1;
      if (typeof e.data !== 'string') { bad.push('binary frame'); return; }
      const text = e.data;
      if (text[0] === '0') {
        try { entry.sid = entry.sid || JSON.parse(text.slice(1)).sid; }
        catch (err) { bad.push(text.slice(0, 200)); }
        return;
      }
      if (text[0] !== '4') return;
      const head = /^4\d(?:\d+-)?(?:\/[^,]*,)?\d*/.exec(text);
      const rest = text.slice(head ? head[0].length : 2);
      if (rest) { try { JSON.parse(rest); } catch (err) { bad.push(text.slice(0, 200)); } }
    });
    return ws;
  }
  Probe.prototype = Native.prototype;
  Object.assign(Probe, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  window.WebSocket = Probe;
})();
"""

PAGE_STATE = """() => ({
  sockets: (window.__wsLog || []).filter(e => e.url.includes('/socket.io/')),
  bad: window.__wsBad || [],
  status: document.querySelector('[data-testid=connection-status]')?.textContent ?? null,
  join: document.querySelector('[data-testid=room]')?.dataset.joinStatus ?? null,
})"""


class LoopThread:
    """An asyncio loop of its own for the raw clients, next to Playwright's sync API."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return self.submit(coro).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    yield runner
    runner.close()


def hostile_signals() -> list[dict[str, Any]]:
    """Every value JSON cannot carry, where a browser would read it: SDP, candidate, keys."""
    signals: list[dict[str, Any]] = []
    for value in HOSTILE_JSON.values():
        signals.append({"type": "offer", "sdp": value})
        signals.append({"candidate": {"candidate": value, "sdpMid": "0", "sdpMLineIndex": 0}})
    return signals


# Well-formed JSON the server relays as it is (the protocol's signal is any object): the
# browser has to survive it too.
NONSENSE_SIGNALS: list[dict[str, Any]] = [
    {"type": "offer", "sdp": "v=0 this is not sdp"},
    {"type": "answer", "sdp": ""},
    {"candidate": {"candidate": "garbage", "sdpMid": "0", "sdpMLineIndex": 0}},
    {"type": 5},
    {},
]


async def attack(mallory: RawSocketIO, second: RawSocketIO, victim: str) -> dict[str, Any]:
    """Everything at once, as fast as the socket takes it; returns the acks' codes."""
    codes: dict[str, list[Any]] = {}

    async def send(kind: str, event: Any, *args: Any, **kw: Any) -> None:
        ack_id = await mallory.emit(event, *args, **kw)
        if ack_id is not None:
            codes.setdefault(kind, []).append(ack_id)

    def signal(s: Any, user: str = "mallory") -> dict[str, Any]:
        return {"targetUserId": victim, "userId": user, "signal": s}

    for s in hostile_signals():
        await send("hostile", "signal-send", signal(s))
    await send(
        "hostile",
        "signal-send",
        raw=f'["signal-send",{{"targetUserId":"{victim}",'
        '"userId":"mallory","signal":{"type":"offer","sdp":NaN}}]',
    )
    placeholder = {"_placeholder": True, "num": 0}
    await send(
        "binary", "signal-send", signal({"type": "offer", "sdp": placeholder}), binary=[b"\x00sdp"]
    )
    for name in ("disconnect", "connect", "connect_error", "*", "message", "disconnecting"):
        await mallory.emit(name, ack=False)
        await send("reserved", name, {})
    for frame in (
        '42["signal-send",',
        "4271[1,2]",
        "42[]",
        "40",
        "43",
        '431["x"]',
        "49",
        '461-9[{"_placeholder":true,"num":0}]',
        "4x",
        "4",
    ):
        await mallory.send_text(frame)
    await send("spoofed", "signal-send", signal({"type": "offer", "sdp": "v=0"}, user=victim))
    for s in NONSENSE_SIGNALS:
        await send("nonsense", "signal-send", signal(s))
    # An attachment flood: announced, never buffered (8 MiB here; the raw suite does 50).
    await mallory.send_text('45999999-["chat-message",{"message":{"_placeholder":true,"num":0}}]')
    chunk = bytes(256 * 1024)
    for _ in range(32):
        await mallory.send_binary(chunk)
    # Floods: refused signals, chat beyond its limit, unknown events.
    for i in range(500):
        await send("flood-signal", "signal-send", signal({"candidate": Raw("NaN"), "i": i}))
    for i in range(2000):
        await send("flood-chat", "chat-message", {"message": f"spam {i}"})
        if i % 100 == 99:
            await asyncio.sleep(0.01)
    for i in range(300):
        await send("flood-unknown", f"nope-{i}", {})
    # Engine.IO garbage last, on a second socket: it may cost that socket its connection.
    for frame in ("garbage", "", "9", "\x00"):
        if second.connected:
            await second.send_text(frame)
    answered: dict[str, Any] = {}
    deadline = time.monotonic() + 15  # a server that went deaf must not hang the test
    for kind, ids in codes.items():
        got = []
        for ack_id in ids:
            try:
                left = max(0.01, deadline - time.monotonic())
                [ack] = await mallory.wait_ack(ack_id, timeout=left)
                got.append(ack.get("error") if isinstance(ack, dict) else ack)
            except (TimeoutError, ValueError):
                got.append("no ack")
        answered[kind] = sorted(set(map(str, got)))
    return answered


def test_hostile_peer_cannot_disconnect_or_silence_a_browser(
    netns: None, e2e_server: ServerProcess, launch: LaunchFn, loop_thread: LoopThread
) -> None:
    room = e2e_server.create_room("p2p")
    alice = launch("Alice")
    alice.context.add_init_script(WS_PROBE)
    alice.page.goto(f"/room/{room}?name=Alice&raw_audio=1")
    alice.wait_joined()
    victim = alice.user_id()
    before = alice.eval(PAGE_STATE)
    assert len(before["sockets"]) == 1 and before["sockets"][0]["open"], before
    sid = before["sockets"][0]["sid"]
    assert sid and before["status"] == "Connected", before

    pool = RawPool(e2e_server.url)

    async def people() -> tuple[RawSocketIO, RawSocketIO, RawSocketIO]:
        watcher = await pool.connect()
        await watcher.join(room, "watcher", "Watcher")
        mallory = await pool.connect()
        await mallory.join(room, "mallory", "Mallory")
        second = await pool.connect()
        await second.join(room, "mallory2", "Mallory 2")
        return watcher, mallory, second

    try:
        watcher, mallory, second = loop_thread.run(people())
        alice.page.get_by_test_id("chat-button").click()

        # Alice's page is watched the whole time the attack runs.
        running = loop_thread.submit(attack(mallory, second, victim))
        seen_status: set[str | None] = set()
        give_up = time.monotonic() + 60
        while not running.done() and time.monotonic() < give_up:
            state = alice.eval(PAGE_STATE)
            seen_status.add(state["status"])
            time.sleep(0.2)
        codes = running.result(timeout=5)

        # Then an ordinary message, from someone else, reaches her chat.
        loop_thread.run(watcher.call("chat-message", {"message": "hello after the attack"}))
        alice.page.locator(
            "[data-testid=chat-message]", has_text="hello after the attack"
        ).wait_for(timeout=10_000)
        after = alice.eval(PAGE_STATE)
        loop_thread.run(watcher.barrier())

        # Alice: connected all along, on the one websocket she started with.
        assert seen_status == {"Connected"}, seen_status
        assert after["status"] == "Connected" and after["join"] == "joined", after
        assert [s["sid"] for s in after["sockets"]] == [sid], after["sockets"]
        assert not after["sockets"][0]["closed"], after["sockets"]
        assert after["bad"] == [], after["bad"][:5]
        # The room: Alice never left, never rejoined; the watcher only read standard JSON.
        left = [e for e in watcher.events("user-left") if e["userId"] == victim]
        joined = [e for e in watcher.events("user-joined") if e["userId"] == victim]
        assert left == [] and joined == [], (left, joined)
        assert watcher.violations == [] and mallory.violations == []
        # Rate limits held: Alice's chat shows at most a burst of spam.
        spam = alice.page.locator("[data-testid=chat-message]", has_text="spam ").count()
        assert spam <= 20, spam
        # And the server refused what it must (the attack did reach it).
        assert codes["hostile"] == ["invalid_payload"], codes
        assert codes["binary"] == ["invalid_payload"], codes
        assert "unknown_event" in codes["reserved"], codes
        assert set(codes["reserved"]) <= {"unknown_event", "rate_limited"}, codes
        assert set(codes["flood-signal"]) <= {"invalid_payload", "rate_limited"}, codes
        wait_until(lambda: alice.eval(PAGE_STATE)["status"] == "Connected", timeout=2)
    finally:
        loop_thread.run(pool.close())
        alice.close()
