"""Participants in network namespaces: a Chromium per topology host (tests/support/topology.py).

The server listens on the topology's gateway (``start_server(..., host=net.gateway)``) and each
browser's traffic leaves from its own host, so a test can put it behind a NAT or a firewall,
or cut its link, while Playwright still drives it over a pipe.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    CHROMIUM,
    PERSONAS,
    TIMEOUT_MS,
    Participant,
    chromium_args,
    media_files,
)
from tests.support.topology import Host, missing_tools

# Keeps the app's RTCPeerConnections in window.__peerConnections, to read their getStats.
KEEP_PEER_CONNECTIONS = """(() => {
  const Original = window.RTCPeerConnection;
  window.__peerConnections = [];
  window.RTCPeerConnection = class extends Original {
    constructor(...args) { super(...args); window.__peerConnections.push(this); }
  };
})();"""

# Console lines stamped with the page's own clock (they may reach the test late).
STAMP_CONSOLE = (
    "(() => { const info = console.info.bind(console);"
    " console.info = (...a) => info((Date.now() / 1000).toFixed(1), ...a) })()"
)


def require_topology(*tools: str) -> None:
    """Fails under CI=true, else skips, when namespaces (or ``tools``) are not available."""
    missing = missing_tools() + [t for t in tools if shutil.which(t) is None]
    if not missing:
        return
    message = f"network topology tests need {', '.join(missing)}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def launch_in_host(
    pw: Any,
    host: Host,
    server_url: str,
    name: str,
    media_dir: Path,
    *,
    workdir: Path | None = None,
    viewport: tuple[int, int] = (960, 640),
    init_scripts: tuple[str, ...] = (),
    video: Path | None = None,
) -> Participant:
    """``name``'s Chromium (their persona's colour and tone) inside ``host``; no page loaded.

    The server's address is not loopback, so it is declared a secure origin (camera).
    """
    persona = PERSONAS[name]
    default_video, audio = media_files(media_dir, persona)
    secure = f"--unsafely-treat-insecure-origin-as-secure={server_url}"
    browser = pw.chromium.launch(
        executable_path=str(host.wrapper(CHROMIUM, workdir)),
        args=chromium_args(video or default_video, audio, [secure]),
    )
    context = browser.new_context(
        permissions=["camera", "microphone"],
        viewport={"width": viewport[0], "height": viewport[1]},
        base_url=server_url,
    )
    context.set_default_timeout(TIMEOUT_MS)
    for script in init_scripts:
        context.add_init_script(script=script)
    page = context.new_page()
    p = Participant(persona, browser, context, page)
    page.on("console", lambda msg: p.console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda err: p.console.append(f"pageerror: {err}"))
    return p
