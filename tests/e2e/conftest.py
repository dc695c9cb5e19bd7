"""End-to-end fixtures: the real server as a subprocess and one Chromium process per participant.

Everything here runs inside ``scripts/netns-run`` (a private network namespace), e.g.::

    cd client && npm ci && npm run build && cd ..
    scripts/netns-run .venv/bin/pytest tests/e2e -x

Each participant is a separate Chromium *process* because the fake capture files
(``--use-file-for-fake-video-capture`` / ``--use-file-for-fake-audio-capture``) are per
process. Each one sends a solid colour (y4m) and a sine tone (WAV) of its own, so a test can
tell by pixels and by frequency whose media arrived where.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import inside_private_netns

REPO = Path(__file__).resolve().parents[2]
WEB_INDEX = REPO / "sfu" / "web" / "index.html"
OUTPUT_DIR = REPO / "test-output"
CHROMIUM = os.environ.get("SFU_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
TIMEOUT_MS = 30_000

WIDTH, HEIGHT, FPS = 320, 240, 15


# -- media files ---------------------------------------------------------------------------
def rgb_to_yuv601(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.601 limited range ("studio swing"), what Chromium assumes for y4m frames."""
    r, g, b = (c / 255.0 for c in rgb)
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    cb = 128 - 37.797 * r - 74.203 * g + 112.0 * b
    cr = 128 + 112.0 * r - 93.786 * g - 18.214 * b
    return tuple(int(round(min(255.0, max(0.0, v)))) for v in (y, cb, cr))  # type: ignore[return-value]


def write_y4m(path: Path, rgb: tuple[int, int, int], seconds: float = 2.0) -> Path:
    """A solid-colour 4:2:0 YUV4MPEG2 file; Chromium's fake camera loops it."""
    y, u, v = rgb_to_yuv601(rgb)
    frame = b"".join(
        [
            b"FRAME\n",
            np.full((HEIGHT, WIDTH), y, dtype=np.uint8).tobytes(),
            np.full((HEIGHT // 2, WIDTH // 2), u, dtype=np.uint8).tobytes(),
            np.full((HEIGHT // 2, WIDTH // 2), v, dtype=np.uint8).tobytes(),
        ]
    )
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(int(seconds * FPS)):
            f.write(frame)
    return path


def write_wav(path: Path, freq: float, seconds: float = 2.0, rate: int = 48_000) -> Path:
    """A mono 16-bit sine tone; a whole number of periods so the loop has no click."""
    n = int(rate * seconds)
    periods = max(1, round(freq * seconds))
    t = np.arange(n) / rate
    samples = 0.5 * np.sin(2 * math.pi * (periods / seconds) * t)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


@dataclass(frozen=True)
class Persona:
    name: str
    rgb: tuple[int, int, int]
    tone_hz: float


PERSONAS = {
    "Alice": Persona("Alice", (200, 40, 40), 440.0),
    "Bob": Persona("Bob", (40, 170, 60), 660.0),
    "Carol": Persona("Carol", (40, 80, 210), 880.0),
    "Dave": Persona("Dave", (220, 200, 40), 550.0),
}


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


def media_files(media_dir: Path, p: Persona) -> tuple[Path, Path]:
    video = media_dir / f"{p.name}.y4m"
    audio = media_dir / f"{p.name}.wav"
    if not video.exists():
        write_y4m(video, p.rgb)
    if not audio.exists():
        write_wav(audio, p.tone_hz)
    return video, audio


# -- the server ----------------------------------------------------------------------------
def _require_netns() -> None:
    """The same rule as the ``netns`` fixture, for fixtures wider than one test."""
    if inside_private_netns():
        return
    message = "WebRTC tests must run inside scripts/netns-run (private network namespace)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


ADMIN_TOKEN = "e2e-admin-token"


def http_json(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@dataclass
class ServerProcess:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    def create_room(self, mode: str = "p2p") -> str:
        status, body = http_json("POST", f"{self.url}/api/rooms", {"mode": mode})
        assert status == 201, (status, body)
        return body["roomId"]

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = http_json(method, f"{self.url}{path}", body, token=ADMIN_TOKEN)
        assert 200 <= status < 300, (status, answer)
        return answer

    def room_media(self, room_id: str) -> dict[str, Any]:
        """The SFU router's counters of a room (admin view of GET /api/rooms/{id})."""
        return self.admin("GET", f"/api/rooms/{room_id}")["media"]

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def start_server(
    workdir: Path,
    env_overrides: dict[str, str] | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
) -> ServerProcess:
    """``python -m sfu serve`` on a free port of ``host`` (127.0.0.1; a topology's gateway
    for browsers in other namespaces), run from ``workdir``.

    Defaults only (no ``SFU_*`` variable of the caller's environment), the admin token
    ``ADMIN_TOKEN``, plus ``env_overrides`` (e.g. ``{"SFU_RECORDING__FPS": "15"}``). Waits until
    ``/health`` answers; stop it with :func:`stop_server`.
    """
    _require_netns()
    if not WEB_INDEX.is_file():
        pytest.fail("the web app is not built: run `cd client && npm ci && npm run build` first")
    port = port or _free_port()
    log_path = workdir / "server.log"
    cmd = [sys.executable, "-m", "sfu", "serve", "--host", host, "--port", str(port)]
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": pythonpath}
    for key in [k for k in env if k.startswith("SFU_") and k != "SFU_NETNS"]:
        env.pop(key)
    env["SFU_AUTH__ADMIN_TOKEN"] = ADMIN_TOKEN
    # One session-wide server makes every test's rooms from 127.0.0.1: lift the per-address
    # creation rate (the limit itself is tested in tests/server/test_raw_protocol.py).
    env["SFU_ROOMS__CREATE_PER_MINUTE"] = "6000"
    env.update(env_overrides or {})
    with log_path.open("ab") as log:  # (a restarted server's log goes on)
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=env)
    server = ServerProcess(f"http://{host}:{port}", port, proc, log_path)
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            status, body = http_json("GET", f"{server.url}/health")
            if status == 200 and body.get("status") == "ok":
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"server did not become healthy:\n{server.log_tail()}")
        time.sleep(0.1)
    return server


def stop_server(server: ServerProcess) -> None:
    """SIGTERM (the server finishes its recordings' files first), SIGKILL after 15 s."""
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


@pytest.fixture(scope="session")
def e2e_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``python -m sfu serve`` on a free port of 127.0.0.1, stopped with SIGTERM."""
    # Run from an empty folder so no ./sfu.toml of the developer is picked up; defaults only.
    server = start_server(tmp_path_factory.mktemp("server"))
    yield server
    stop_server(server)


# -- browsers --------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Any]:
    _require_netns()
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM}: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


JS_VIDEO_COLOUR = """(name) => {
  const v = document.querySelector(`video[aria-label="${CSS.escape(name)}"]`);
  if (!v || !v.videoWidth || v.readyState < 2) return null;
  const c = document.createElement('canvas'); c.width = 32; c.height = 24;
  const g = c.getContext('2d', {willReadFrequently: true});
  g.drawImage(v, 0, 0, 32, 24);
  const d = g.getImageData(4, 4, 24, 16).data;
  let r = 0, gg = 0, b = 0, n = 0;
  for (let i = 0; i < d.length; i += 4) { r += d[i]; gg += d[i + 1]; b += d[i + 2]; n++; }
  return [r / n, gg / n, b / n];
}"""

JS_AUDIO_PEAK = """async (name) => {
  const v = document.querySelector(`video[aria-label="${CSS.escape(name)}"]`);
  const s = v && v.srcObject;
  const t = s && s.getAudioTracks()[0];
  if (!t) return null;
  const ctx = new AudioContext();
  await ctx.resume();
  const src = ctx.createMediaStreamSource(new MediaStream([t]));
  const an = ctx.createAnalyser();
  an.fftSize = 8192;
  src.connect(an);
  await new Promise(r => setTimeout(r, 700));
  const buf = new Float32Array(an.frequencyBinCount);
  an.getFloatFrequencyData(buf);
  let max = -Infinity, idx = 0;
  for (let i = 2; i < buf.length; i++) if (buf[i] > max) { max = buf[i]; idx = i; }
  const hz = idx * ctx.sampleRate / an.fftSize;
  src.disconnect(); await ctx.close();
  return {hz, db: max, readyState: t.readyState, muted: t.muted};
}"""


@dataclass
class Participant:
    persona: Persona
    browser: Any
    context: Any
    page: Any
    console: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.persona.name

    def eval(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)

    def wait_joined(self, timeout_ms: int = TIMEOUT_MS) -> None:
        self.page.wait_for_selector(
            '[data-testid=room][data-join-status="joined"]', timeout=timeout_ms
        )

    def user_id(self) -> str:
        return self.eval("() => window.__sfuDebug && window.__sfuDebug.selfId")

    def tile(self, name: str) -> Any:
        return self.page.locator(f'[data-testid=video-tile][data-name="{name}"]')

    def video_colour(self, name: str) -> list[float] | None:
        return self.eval(JS_VIDEO_COLOUR, name)

    def audio_peak(self, name: str) -> dict[str, Any] | None:
        return self.eval(JS_AUDIO_PEAK, name)

    def video_size(self, name: str) -> list[int] | None:
        """[videoWidth, videoHeight] of the tile's <video> of ``name``."""
        return self.eval(
            '(n) => { const v = document.querySelector(`video[aria-label="${CSS.escape(n)}"]`);'
            " return v ? [v.videoWidth, v.videoHeight] : null }",
            name,
        )

    def peers(self) -> list[dict[str, Any]]:
        return self.eval("() => window.__sfuDebug ? window.__sfuDebug.peers() : []")

    def stats(self) -> dict[str, Any]:
        return self.eval("() => window.__sfuDebug ? window.__sfuDebug.stats() : {}")

    def close(self) -> None:
        for closer in (self.context.close, self.browser.close):
            try:
                closer()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass


class Room:
    """A meeting the tests of one module share, in file order: its id, server and people."""

    def __init__(self, room_id: str, server: ServerProcess, people: dict[str, Participant]):
        self.id = room_id
        self.server = server
        self.people = people

    def __getitem__(self, name: str) -> Participant:
        return self.people[name]

    def others(self, name: str) -> list[Participant]:
        return [p for n, p in self.people.items() if n != name]

    def media(self) -> dict[str, Any]:
        """The SFU router's counters for this room (admin API)."""
        return self.server.room_media(self.id)


def create_room_on_start_page(launch: LaunchFn, mode: str) -> tuple[Participant, str]:
    """Alice creates a room on the start page (``mode``: the "P2P" or "SFU" radio button),
    passes the pre-join screen (her name filled in) and joins; returns her and the room's id."""
    alice = launch("Alice", path="/?raw_audio=1")
    alice.page.get_by_label("Your name").fill("Alice")
    alice.page.get_by_label(mode).check()
    alice.page.get_by_role("button", name="Create room").click()
    alice.page.wait_for_url(re.compile(r"/room/[a-z-]+\?raw_audio=1$"))  # the link to share
    join_from_prejoin(alice)
    return alice, alice.page.url.split("/room/")[1].split("?")[0]


def join_from_prejoin(p: Participant) -> None:
    """The pre-join screen (#18): its name filled in from the start page; press Join."""
    p.page.get_by_test_id("prejoin").wait_for()
    assert p.page.get_by_label("Your name").input_value() == p.name
    p.page.get_by_test_id("prejoin-join").click()
    p.wait_joined()


def wait_until(
    check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.25, what: str = "condition"
) -> Any:
    """Polls ``check`` until it returns something truthy; fails with the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out waiting for {what}; last value: {last!r}")


def colour_close(got: list[float] | None, want: tuple[int, int, int], tol: float = 25) -> bool:
    return got is not None and all(abs(g - w) <= tol for g, w in zip(got, want, strict=True))


TONE_TOLERANCE_HZ = 15


def assert_sees(viewer: Participant, name: str, timeout: float = 30) -> None:
    """``viewer``'s tile of ``name`` shows that persona's colour."""
    want = PERSONAS[name].rgb
    wait_until(
        lambda: colour_close(viewer.video_colour(name), want),
        timeout=timeout,
        what=f"{viewer.name} to see {name}'s colour {want} (got {viewer.video_colour(name)})",
    )


def assert_hears(listener: Participant, name: str, timeout: float = 20) -> None:
    """``listener`` receives ``name``'s tone, live and loud enough."""
    want = PERSONAS[name].tone_hz

    def heard() -> Any:
        peak = listener.audio_peak(name)
        ok = (
            peak is not None
            and peak["readyState"] == "live"
            and abs(peak["hz"] - want) <= TONE_TOLERANCE_HZ
            and peak["db"] > -70
        )
        return peak if ok else None

    wait_until(heard, timeout=timeout, what=f"{listener.name} to hear {name}'s {want} Hz")


def assert_gets_screen(viewer: Participant, name: str) -> None:
    """``viewer`` receives ``name``'s 16:9 fake screen instead of the camera's colour."""
    viewer.page.wait_for_selector(f'[data-testid=video-tile][data-name="{name}"][data-screen="on"]')

    def wide() -> Any:
        size = viewer.video_size(name)
        return size if size and size[0] > 0 and abs(size[0] / size[1] - 16 / 9) < 0.05 else None

    wait_until(wide, what=f"{viewer.name} to receive {name}'s 16:9 screen")
    assert not colour_close(viewer.video_colour(name), PERSONAS[name].rgb)


def chromium_args(
    video: Path,
    audio: Path,
    extra: list[str] | None = None,
    grant_media: bool = True,
    autoplay: bool = True,
) -> list[str]:
    """Flags of a participant's Chromium.

    Screen sharing headless: --use-fake-device-for-media-stream together with
    --use-fake-ui-for-media-stream makes getDisplayMedia return a generated "entire screen"
    (label ``screen:-3:0``, displaySurface ``monitor``). Fake UI alone fails with
    NotReadableError (there is no display to capture); without fake UI, and with only
    --auto-select-desktop-capture-source or --auto-select-tab-capture-source-by-title, the
    call never settles (it waits for a picker that headless cannot show).
    """
    return [
        "--use-fake-device-for-media-stream",
        *(["--use-fake-ui-for-media-stream"] if grant_media else []),
        f"--use-file-for-fake-video-capture={video}",
        f"--use-file-for-fake-audio-capture={audio}",
        *(["--autoplay-policy=no-user-gesture-required"] if autoplay else []),
        "--disable-gpu",
        "--mute-audio",
        *(extra or []),
    ]


LaunchFn = Callable[..., Participant]


@pytest.fixture(scope="module")
def launch(
    playwright_instance: Any, e2e_server: ServerProcess, media_dir: Path
) -> Iterator[LaunchFn]:
    """``launch("Alice", path="/room/x?name=Alice&raw_audio=1")``: a participant's own Chromium."""
    made: list[Participant] = []

    def start(
        name: str,
        path: str | None = None,
        room: str | None = None,
        extra_args: list[str] | None = None,
        viewport: tuple[int, int] = (960, 640),
        grant_media: bool = True,
        autoplay: bool = True,
        init_scripts: tuple[str, ...] = (),
        locale: str | None = None,
    ) -> Participant:
        """``grant_media=False``: camera and microphone permission is denied (receive-only).
        ``init_scripts`` run in every page before the app (e2e/hosts.py has some).
        ``locale`` (e.g. ``"de-DE"``): the browser's language (navigator.language and
        Accept-Language); unset, Chromium's default."""
        persona = PERSONAS[name]
        video, audio = media_files(media_dir, persona)
        browser = playwright_instance.chromium.launch(
            executable_path=CHROMIUM,
            args=chromium_args(video, audio, extra_args, grant_media, autoplay),
        )
        context = browser.new_context(
            permissions=["camera", "microphone"] if grant_media else [],
            viewport={"width": viewport[0], "height": viewport[1]},
            base_url=e2e_server.url,
            **({"locale": locale} if locale else {}),
        )
        context.set_default_timeout(TIMEOUT_MS)
        for script in init_scripts:
            context.add_init_script(script=script)
        page = context.new_page()
        p = Participant(persona, browser, context, page)
        page.on("console", lambda msg: p.console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda err: p.console.append(f"pageerror: {err}"))
        made.append(p)
        if path is None and room is not None:
            path = f"/room/{room}?name={name}&raw_audio=1"
        if path is not None:
            page.goto(path)
        return p

    start.made = made  # type: ignore[attr-defined]  # for close_launched()
    yield start
    for p in made:
        p.close()


def close_launched(launch: LaunchFn) -> None:
    """Closes every browser ``launch`` started so far (a module's tests that each make their
    own room: left open, their pages keep the 2-core machine busy for the next tests)."""
    made = launch.made  # type: ignore[attr-defined]
    for p in made:
        p.close()
    made.clear()
