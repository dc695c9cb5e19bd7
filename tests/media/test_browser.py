"""Chromium against the router: a browser publishes to and subscribes from the SFU.

A stand-in for the Socket.IO layer: the page posts its sfu-* events to a tiny HTTP
endpoint and polls for the server's pushes, so this checks the media layer's interop with
a real browser (its offers, codecs, header extensions, RTCP) on its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import async_playwright

from tests.support.peers import NumberedVideoTrack, SfuPeer

pytestmark = [pytest.mark.webrtc, pytest.mark.browser]

CHROMIUM = os.environ.get("SFU_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_FOUND = os.path.exists(CHROMIUM)

PAGE = """<!doctype html><html><body><script>
window.numbers = []; window.unclean = 0; window.tracks = [];
const post = async (path, body) =>
  (await fetch(path, {method: "POST", body: JSON.stringify(body)})).json();
const gathered = (pc) => new Promise((resolve) => {
  if (pc.iceGatheringState === "complete") return resolve();
  pc.addEventListener("icegatheringstatechange",
    () => pc.iceGatheringState === "complete" && resolve());
});
function readNumber(video, canvas) {
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  ctx.drawImage(video, 0, 0, 320, 240);
  const px = ctx.getImageData(0, 0, 320, 240).data;
  let number = 0, clean = true;
  for (let bit = 0; bit < 16; bit++) {
    const row = Math.floor(bit / 8), col = bit % 8;
    let sum = 0, n = 0;
    for (let y = row * 120 + 30; y < row * 120 + 90; y += 4)
      for (let x = col * 40 + 10; x < col * 40 + 30; x += 2) { sum += px[(y * 320 + x) * 4]; n++; }
    const mean = sum / n;
    if (mean > 128) number |= 1 << bit;
    if (mean > 50 && mean < 205) clean = false;
  }
  return [number, clean];
}
let sub = null, session = null, entries = {};
async function onOffer(msg) {
  if (msg.session !== session) {
    if (sub) sub.close();
    session = msg.session;
    sub = new RTCPeerConnection({iceServers: []});
    sub.ontrack = (event) => {
      const entry = entries[event.transceiver.mid];
      window.tracks.push([entry.userId, entry.source, entry.kind]);
      if (event.track.kind !== "video") return;
      const video = document.createElement("video");
      video.muted = true; video.autoplay = true; video.playsInline = true;
      video.srcObject = new MediaStream([event.track]);
      document.body.appendChild(video);
      const canvas = document.createElement("canvas");
      canvas.width = 320; canvas.height = 240;
      const frame = () => {
        const [number, clean] = readNumber(video, canvas);
        window.numbers.push(number);
        if (!clean) window.unclean++;
        video.requestVideoFrameCallback(frame);
      };
      video.requestVideoFrameCallback(frame);
    };
  }
  for (const t of msg.tracks) entries[t.mid] = t;
  await sub.setRemoteDescription(msg.description);
  await sub.setLocalDescription();
  await gathered(sub);
  await post("/sfu/sfu-subscribe-answer", {session, description: sub.localDescription});
}
async function poll() {
  for (;;) {
    for (const [event, payload] of await post("/poll", {}))
      if (event === "sfu-subscribe-offer") await onOffer(payload);
    await new Promise((r) => setTimeout(r, 100));
  }
}
window.publish = async () => {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: {width: 320, height: 240}, audio: true});
  const pub = new RTCPeerConnection({iceServers: []});
  const sources = {};
  for (const track of stream.getTracks()) {
    pub.addTransceiver(track, {direction: "sendonly"});
    sources[track.id] = track.kind === "audio" ? "microphone" : "camera";
  }
  await pub.setLocalDescription();
  await gathered(pub);
  const ack = await post("/sfu/sfu-publish", {description: pub.localDescription, sources});
  if (!ack.ok) throw new Error(JSON.stringify(ack));
  await pub.setRemoteDescription(ack.description);
  return ack.tracks;
};
poll();
</script></body></html>"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_chromium_publishes_and_subscribes(netns, make_router, codec):
    if not CHROMIUM_FOUND:
        pytest.fail(f"chromium not found at {CHROMIUM}: apt-get install -y chromium")
    router = make_router(video_codec=codec)
    pushes: list[tuple[str, dict]] = []

    async def send(event: str, payload: dict) -> None:
        pushes.append((event, payload))

    await router.join("chrome", send)

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def sfu_event(request: web.Request) -> web.Response:
        payload = json.loads(await request.text())
        return web.json_response(
            await router.handle("chrome", request.match_info["event"], payload)
        )

    async def poll(request: web.Request) -> web.Response:
        out = list(pushes)
        pushes.clear()
        return web.json_response(out)

    app = web.Application()
    app.add_routes(
        [web.get("/", page), web.post("/sfu/{event}", sfu_event), web.post("/poll", poll)]
    )
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    alice = await SfuPeer(router, "alice").join()
    bob = await SfuPeer(router, "bob").join()
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--use-fake-device-for-media-stream",
                    "--use-fake-ui-for-media-stream",
                    "--autoplay-policy=no-user-gesture-required",
                    "--disable-gpu",
                    "--mute-audio",
                ],
            )
            try:
                context = await browser.new_context(permissions=["camera", "microphone"])
                tab = await context.new_page()
                await tab.goto(f"http://127.0.0.1:{port}/")
                # Chromium's offer (many codecs, RTX, RED, transport-cc...) is answered
                # with the configured video codec and Opus only.
                tracks = await tab.evaluate("window.publish()")
                assert sorted((t["kind"], t["source"], t["active"]) for t in tracks) == [
                    ("audio", "microphone", True),
                    ("video", "camera", True),
                ]
                received = await bob.wait_video("chrome", 30)
                assert received.frames >= 30

                # Chromium subscribes to alice's numbered video and reads the numbers.
                await alice.publish({"camera": NumberedVideoTrack()})
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 30
                while len(await tab.evaluate("window.numbers")) < 30:
                    assert loop.time() < deadline, await tab.evaluate("window.tracks")
                    await asyncio.sleep(0.2)
                numbers: list[Any] = await tab.evaluate("window.numbers")
                assert await tab.evaluate("window.unclean") == 0
                # rVFC may repeat a frame, never go back.
                assert all(b >= a for a, b in zip(numbers, numbers[1:], strict=False))
                assert numbers[-1] - numbers[0] >= 20
                assert ["alice", "camera", "video"] in await tab.evaluate("window.tracks")
                # Chromium's microphone level is kept for the speaker indicator.
                assert "chrome" in router.audio_levels()
                assert router.stats()["forwardingEncodes"] == 0
            finally:
                await browser.close()
    finally:
        await alice.close()
        await bob.close()
        await runner.cleanup()
