"""Accessibility (#18): axe-core on every page of the app, keyboard use, focus, reduced motion.

axe-core (the npm devDependency, ``client/node_modules/axe-core/axe.min.js``) is injected into
each page and ``axe.run()`` checks it as it is shown: the start page, the pre-join screen, a
P2P and an SFU meeting of two (with the chat, participants and devices panels, the reactions
picker, the shortcuts dialog and, on a phone, the More menu open), the recordings page with a
recording, "This meeting does not exist", "This meeting is full" and "You left the meeting";
each at 1280x800 and at 390x844. Any violation of impact serious or critical fails the test
(printed with its rule, impact, target selectors and axe's failure summary); so does a page
without a ``main`` landmark or an ``h1``.

Then, without the mouse: Tab reaches every toolbar control; the chat opens, sends and closes
from the keyboard; Escape closes the reactions picker, the More menu and the dialogs and
gives the focus back to the button that opened them. With ``prefers-reduced-motion: reduce``
the REC badge does not blink.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import (
    OUTPUT_DIR,
    REPO,
    LaunchFn,
    Participant,
    ServerProcess,
    assert_sees,
    start_server,
    stop_server,
    wait_until,
)

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]

AXE = REPO / "client" / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORTS = {"laptop": (1280, 800), "phone": (390, 844)}
FAILING_IMPACTS = ("serious", "critical")

JS_AXE = """async () => {
  const r = await axe.run(document, {resultTypes: ['violations']});
  return r.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({
      target: n.target.map(String).join(' '), summary: n.failureSummary || '',
    })),
  }));
}"""

JS_LANDMARKS = """() => ({
  main: document.querySelectorAll('main, [role=main]').length,
  h1: [...document.querySelectorAll('h1')].map(h => h.textContent.trim()).filter(Boolean),
})"""


@pytest.fixture(scope="module")
def e2e_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Rooms of two (a third is refused: the full page) that exist only when made (an unknown
    one: the "does not exist" page)."""
    server = start_server(
        tmp_path_factory.mktemp("a11y-server"),
        {"SFU_ROOMS__MAX_PARTICIPANTS": "2", "SFU_ROOMS__CREATE_ON_JOIN": "false"},
    )
    yield server
    stop_server(server)


class Scanner:
    """Runs axe on pages and collects what fails, to report it all at once."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.scanned: list[str] = []

    def scan(self, page: Any, where: str) -> None:
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.add_script_tag(path=str(AXE))
        page.wait_for_timeout(250)  # layout and transitions settle
        self.scanned.append(where)
        for v in page.evaluate(JS_AXE):
            if v["impact"] not in FAILING_IMPACTS:
                targets = ", ".join(n["target"] for n in v["nodes"][:4])
                print(f"axe [{where}] (not failing) {v['id']} ({v['impact']}): {targets}")
                continue
            lines = [f"[{where}] {v['id']} ({v['impact']}): {v['help']}"]
            for node in v["nodes"][:8]:
                summary = " ".join(node["summary"].split())
                lines.append(f"    {node['target']}\n        {summary}")
            if len(v["nodes"]) > 8:
                lines.append(f"    ... and {len(v['nodes']) - 8} more")
            self.failures.append("\n".join(lines))
        marks = page.evaluate(JS_LANDMARKS)
        if marks["main"] != 1:
            self.failures.append(f"[{where}] {marks['main']} main landmarks (want one)")
        if len(marks["h1"]) != 1:
            self.failures.append(f"[{where}] h1 headings: {marks['h1']} (want one)")

    def scan_sizes(self, page: Any, where: str, prepare: Any = None) -> None:
        for size, (w, h) in VIEWPORTS.items():
            page.set_viewport_size({"width": w, "height": h})
            if prepare:
                prepare(size)
            self.scan(page, f"{where} @ {size}")

    def check(self) -> None:
        report = "\n".join(self.failures)
        print(f"axe scanned {len(self.scanned)} views: {', '.join(self.scanned)}")
        assert not self.failures, f"accessibility violations:\n{report}"


def control(page: Any, test_id: str) -> Any:
    """A toolbar control; on a phone, behind More (opened when needed)."""
    button = page.get_by_test_id(test_id)
    if not button.is_visible() and page.get_by_test_id("more-button").is_visible():
        page.get_by_test_id("more-button").click()
    button.wait_for(state="visible")
    return button


def close_more(page: Any) -> None:
    more = page.get_by_test_id("more-button")
    if more.is_visible() and more.get_attribute("aria-expanded") == "true":
        more.click()


def scan_room(scanner: Scanner, p: Participant, kind: str) -> None:
    """The meeting as it is, then with each panel, the picker and the dialog open."""
    page = p.page
    for size, (w, h) in VIEWPORTS.items():
        page.set_viewport_size({"width": w, "height": h})
        where = f"{kind} room"
        scanner.scan(page, f"{where} @ {size}")
        for panel, test_id in (
            ("chat", "chat-button"),
            ("participants", "participants-button"),
            ("settings", "settings-button"),
        ):
            control(page, test_id).click()
            page.get_by_role(
                "complementary",
                name={"chat": "Chat", "participants": "Participants", "settings": "Settings"}[
                    panel
                ],
            ).wait_for()
            close_more(page)
            scanner.scan(page, f"{where}, {panel} panel @ {size}")
            control(page, test_id).click()
            close_more(page)
        control(page, "emoji-button").click()
        page.get_by_role("menu", name="Reactions").wait_for()
        scanner.scan(page, f"{where}, reactions picker @ {size}")
        page.keyboard.press("Escape")
        page.get_by_role("menu", name="Reactions").wait_for(state="detached")
        close_more(page)
        if size == "phone":
            page.get_by_test_id("more-button").click()
            scanner.scan(page, f"{where}, More menu @ {size}")
            page.get_by_test_id("more-button").click()
        page.get_by_test_id("shortcuts-button").click() if page.get_by_test_id(
            "shortcuts-button"
        ).is_visible() else page.keyboard.press("?")
        page.get_by_role("dialog", name="Keyboard shortcuts").wait_for()
        scanner.scan(page, f"{where}, shortcuts dialog @ {size}")
        page.keyboard.press("Escape")
        page.get_by_role("dialog", name="Keyboard shortcuts").wait_for(state="detached")
        page.screenshot(path=str(OUTPUT_DIR / f"a11y-{kind.lower()}-room-{size}.png"))


def chat(p: Participant, text: str) -> None:
    page = p.page
    control(page, "chat-button").click()
    close_more(page)
    page.get_by_label("Message").fill(text)
    page.get_by_label("Message").press("Enter")
    page.get_by_test_id("chat-message").filter(has_text=text).wait_for()
    page.get_by_role("button", name="Close chat").click()


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    OUTPUT_DIR.mkdir(exist_ok=True)
    return Scanner()


def two_in_a_room(
    server: ServerProcess, launch: LaunchFn, mode: str
) -> tuple[str, Participant, Participant]:
    room_id = server.create_room(mode)
    alice = launch("Alice", room=room_id, viewport=VIEWPORTS["laptop"])
    alice.wait_joined()
    bob = launch("Bob", room=room_id, viewport=VIEWPORTS["laptop"])
    bob.wait_joined()
    assert_sees(alice, "Bob")
    assert_sees(bob, "Alice")
    # Chat from both: the own and the other's message styles are on screen.
    chat(alice, "Hello from Alice")
    chat(bob, "Hello from Bob")
    return room_id, alice, bob


def test_start_prejoin_and_missing_meeting_pages(
    netns: None, e2e_server: ServerProcess, launch: LaunchFn
) -> None:
    scanner = Scanner()
    dave = launch("Dave", path="/", viewport=VIEWPORTS["laptop"])
    page = dave.page
    page.get_by_role("button", name="Create room").wait_for()
    scanner.scan_sizes(page, "start page")

    room_id = e2e_server.create_room("p2p")
    page.goto(f"/room/{room_id}")
    page.get_by_test_id("prejoin").wait_for()
    wait_until(
        lambda: page.evaluate(
            "() => document.querySelector('[data-testid=preview-video]').videoWidth > 0"
        ),
        what="the camera preview",
    )
    scanner.scan_sizes(page, "pre-join")

    page.goto("/room/no-such-meeting?name=Dave")
    page.get_by_test_id("access-page").wait_for()
    assert page.get_by_test_id("access-page").get_attribute("data-reason") == "unknown_room"
    scanner.scan_sizes(page, "meeting does not exist")

    page.goto("/no/such/page")
    page.get_by_role("heading", name="Page not found").wait_for()
    scanner.scan_sizes(page, "page not found")
    scanner.check()


def test_p2p_room_full_room_and_left_pages(
    netns: None, e2e_server: ServerProcess, launch: LaunchFn
) -> None:
    scanner = Scanner()
    room_id, alice, bob = two_in_a_room(e2e_server, launch, "p2p")
    scan_room(scanner, alice, "P2P")

    carol = launch("Carol", room=room_id, viewport=VIEWPORTS["laptop"])
    carol.page.get_by_test_id("access-page").wait_for()
    assert carol.page.get_by_test_id("access-page").get_attribute("data-reason") == "room_full"
    scanner.scan_sizes(carol.page, "meeting is full")
    carol.close()

    bob.page.get_by_test_id("leave-button").click()
    bob.page.get_by_test_id("left-page").wait_for()
    scanner.scan_sizes(bob.page, "you left the meeting")
    alice.close()
    bob.close()
    scanner.check()


def test_sfu_room_recording_reduced_motion_and_recordings_page(
    netns: None, e2e_server: ServerProcess, launch: LaunchFn
) -> None:
    scanner = Scanner()
    _, alice, bob = two_in_a_room(e2e_server, launch, "sfu")
    scan_room(scanner, alice, "SFU")
    page = alice.page
    page.set_viewport_size({"width": 1280, "height": 800})

    # Server recording: the REC badge blinks, except for those who asked for less motion.
    page.get_by_test_id("server-record-button").click()
    rec = page.get_by_test_id("rec-indicator")
    rec.wait_for()
    js_anim = (
        "() => { const e = document.querySelector('[data-testid=rec-indicator]');"
        " return getComputedStyle(e, '::before').animationName }"
    )
    assert page.evaluate(js_anim) == "rec-blink"
    scanner.scan_sizes(page, "SFU room recording")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.emulate_media(reduced_motion="reduce")
    wait_until(lambda: page.evaluate(js_anim) == "none", what="no blinking REC with reduced motion")
    # Nor do reactions fly up: they show where they are (and go after a few seconds).
    page.get_by_test_id("emoji-button").click()
    page.get_by_role("menuitem", name="React 👍").click()
    emoji = page.get_by_test_id("floating-emoji").first
    emoji.wait_for()
    assert emoji.evaluate("e => getComputedStyle(e).animationName") == "none"
    page.emulate_media(reduced_motion="no-preference")
    page.wait_for_timeout(2500)
    page.get_by_test_id("server-record-button").click()
    rec.wait_for(state="detached", timeout=120_000)

    link = page.get_by_test_id("recordings-link")
    href = link.get_attribute("href") or ""
    token = urllib.parse.parse_qs(urllib.parse.urlparse(href).query)["token"][0]
    recordings = alice.context.new_page()
    recordings.goto(f"/recordings?token={urllib.parse.quote(token)}")
    recordings.get_by_test_id("recording-item").first.wait_for()
    scanner.scan(recordings, "recordings page, just stopped")  # maybe still finishing
    # The page polls a finishing recording until it is ready: then Play shows.
    recordings.get_by_test_id("recording-play").wait_for(timeout=120_000)
    wait_until(
        lambda: recordings.get_by_test_id("recording-play").is_enabled(), what="Play enabled"
    )
    scanner.scan_sizes(recordings, "recordings page")
    recordings.get_by_test_id("recording-play").click()
    recordings.get_by_test_id("recording-video").wait_for()
    scanner.scan(recordings, "recordings page, playing")
    recordings.goto("/recordings")
    recordings.get_by_test_id("recordings-error").wait_for()
    scanner.scan_sizes(recordings, "recordings page without a token")
    recordings.close()
    alice.close()
    bob.close()
    scanner.check()


def focused(page: Any) -> str:
    return page.evaluate(
        "() => { const e = document.activeElement; return e ? "
        "(e.dataset.testid || e.getAttribute('aria-label') || e.tagName) : '' }"
    )


def tab_to(page: Any, test_id: str, limit: int = 60) -> None:
    for _ in range(limit):
        if focused(page) == test_id:
            return
        page.keyboard.press("Tab")
    pytest.fail(f"Tab never reached {test_id}")


TOOLBAR = [
    "toggle-mic",
    "toggle-camera",
    "toggle-screen",
    "raise-hand",
    "layout-toggle",
    "emoji-button",
    "chat-button",
    "participants-button",
    "settings-button",
    "record-button",
    "leave-button",
]


def test_keyboard_focus_and_escape(
    netns: None, e2e_server: ServerProcess, launch: LaunchFn
) -> None:
    room_id = e2e_server.create_room("p2p")
    alice = launch("Alice", room=room_id, viewport=VIEWPORTS["laptop"])
    alice.wait_joined()
    bob = launch("Bob", room=room_id, viewport=VIEWPORTS["laptop"])
    bob.wait_joined()
    page = alice.page

    # Tab, from the top of the page, reaches every toolbar control.
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    seen = []
    for _ in range(50):
        page.keyboard.press("Tab")
        seen.append(focused(page))
    missing = [t for t in TOOLBAR if t not in seen]
    assert not missing, (missing, seen)
    # Each toolbar button is named by its label (shown as a tooltip over the icon).
    for test_id in TOOLBAR:
        name = (
            page.get_by_test_id(test_id).get_attribute("aria-label")
            or page.get_by_test_id(test_id).inner_text()
        )
        assert name.strip(), test_id

    # The chat without the mouse: open it, write, send, close; the focus goes back.
    tab_to(page, "chat-button")
    page.keyboard.press("Enter")
    page.get_by_role("complementary", name="Chat").wait_for()
    wait_until(lambda: focused(page) == "Message", what="the focus in the message field")
    page.keyboard.type("typed without a mouse")
    page.keyboard.press("Enter")
    bob.page.get_by_test_id("unread-count").wait_for()
    page.get_by_test_id("chat-message").filter(has_text="typed without a mouse").wait_for()
    page.keyboard.press("Escape")
    page.get_by_role("complementary", name="Chat").wait_for(state="detached")
    assert focused(page) == "chat-button"

    # The reactions picker: the focus goes into it; Escape closes it, back to its button.
    tab_to(page, "emoji-button")
    page.keyboard.press("Enter")
    page.get_by_role("menu", name="Reactions").wait_for()
    wait_until(lambda: focused(page).startswith("React "), what="the focus in the picker")
    page.keyboard.press("Escape")
    page.get_by_role("menu", name="Reactions").wait_for(state="detached")
    assert focused(page) == "emoji-button"

    # The devices panel: the focus goes into it; Escape closes it.
    tab_to(page, "settings-button")
    page.keyboard.press("Enter")
    settings = page.get_by_role("complementary", name="Settings")
    settings.wait_for()
    assert page.evaluate("() => !!document.activeElement.closest('[aria-label=Settings]')")
    page.keyboard.press("Escape")
    settings.wait_for(state="detached")
    assert focused(page) == "settings-button"

    # The shortcuts dialog: opened with "?", the focus in it, Escape gives it back.
    tab_to(page, "toggle-mic")
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    dialog.wait_for()
    assert page.evaluate("() => !!document.activeElement.closest('[role=dialog]')")
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    assert focused(page) == "toggle-mic"

    # On a phone, More opens a menu of the rest; Escape closes it, back to More.
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_test_id("more-button").focus()
    page.keyboard.press("Enter")
    page.get_by_test_id("raise-hand").wait_for(state="visible")
    page.keyboard.press("Escape")
    page.get_by_test_id("raise-hand").wait_for(state="hidden")
    assert focused(page) == "more-button"
    alice.close()
    bob.close()


def shoot_toolbar(page: Any, size: str) -> None:
    """The toolbar and the room above it by a tooltip's height."""
    bar = page.get_by_role("toolbar", name="Meeting controls").bounding_box()
    clip = {
        "x": 0,
        "y": max(0, bar["y"] - 40),
        "width": page.viewport_size["width"],
        "height": bar["height"] + min(40, bar["y"]),
    }
    page.screenshot(path=str(OUTPUT_DIR / f"toolbar-{size}.png"), clip=clip)


def test_toolbar_icons_with_tooltips(
    netns: None, e2e_server: ServerProcess, launch: LaunchFn
) -> None:
    room_id = e2e_server.create_room("sfu")
    alice = launch("Alice", room=room_id, viewport=VIEWPORTS["laptop"])
    alice.wait_joined()
    page = alice.page
    page.get_by_role("toolbar", name="Meeting controls").wait_for()
    for test_id in ("toggle-mic", "toggle-camera", "chat-button", "leave-button"):
        button = page.get_by_test_id(test_id)
        assert button.locator("svg").count() == 1, test_id
    assert not page.get_by_test_id("more-button").is_visible()  # a laptop shows every control
    mic = page.get_by_test_id("toggle-mic")
    assert mic.get_attribute("aria-label") == "Mute"
    mic.hover()
    tip = mic.locator("[role=tooltip]")
    wait_until(lambda: tip.is_visible(), what="the tooltip on hover")
    assert tip.inner_text() == "Mute"
    shoot_toolbar(page, "laptop")
    page.get_by_test_id("leave-button").focus()
    wait_until(
        lambda: page.get_by_test_id("leave-button").locator("[role=tooltip]").is_visible(),
        what="the tooltip on focus",
    )
    # Mute state on the tile: visible, not only in an ARIA label.
    mic.click()
    alice.tile("Alice").get_by_text("Muted").wait_for()
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_test_id("more-button").wait_for(state="visible")
    row = {
        page.get_by_test_id(t).bounding_box()["y"]
        for t in ("toggle-mic", "chat-button", "more-button", "leave-button")
    }
    assert len(row) == 1, row
    shoot_toolbar(page, "phone")
    page.get_by_test_id("more-button").click()
    page.get_by_test_id("raise-hand").wait_for(state="visible")
    page.screenshot(path=str(OUTPUT_DIR / "toolbar-phone-more.png"))
    # Three people fit on a page: no page controls.
    assert page.get_by_test_id("grid-pages").count() == 0
    alice.close()
