"""The nginx configuration of docs/deployment.md in front of two nodes, as documented."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import socketio

from tests.cluster.conftest import until
from tests.conftest import Client, RunningServer, free_port

Node = Callable[..., Awaitable[RunningServer]]
DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"


def documented_config() -> str:
    blocks = re.findall(r"```nginx\n(.*?)```", DOC.read_text(), re.S)
    [block] = [b for b in blocks if "upstream sfu_nodes" in b]  # "Sticky sessions"
    return block


def start_nginx(directory: Path, ports: tuple[int, int], listen: int) -> subprocess.Popen[bytes]:
    if shutil.which("nginx") is None:
        pytest.fail("nginx is needed (Debian package nginx-light)")
    block = documented_config()
    block = block.replace("127.0.0.1:5001", f"127.0.0.1:{ports[0]}")
    block = block.replace("127.0.0.1:5002", f"127.0.0.1:{ports[1]}")
    block = block.replace("listen 8080;", f"listen 127.0.0.1:{listen};")
    conf = directory / "nginx.conf"
    conf.write_text(
        f"pid {directory}/nginx.pid;\nerror_log {directory}/error.log;\nevents {{}}\n"
        f"http {{\naccess_log off;\nclient_body_temp_path {directory}/body;\n"
        f"proxy_temp_path {directory}/proxy;\n{block}\n}}\n"
    )
    proc = subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(directory), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"nginx exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", listen), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("nginx did not listen")


async def test_documented_nginx_config_serves_websocket_and_polling_clients(
    node: Node, tmp_path: Path
) -> None:
    a, b = await node("a"), await node("b")
    listen = free_port()
    nginx = start_nginx(tmp_path, (a.port, b.port), listen)
    url = f"http://127.0.0.1:{listen}"
    clients: list[socketio.AsyncClient] = []
    direct = Client(b.url)
    try:
        heard: dict[str, list[str]] = {}
        answers = []
        for transport in ("polling", "websocket", "polling"):
            sio = socketio.AsyncClient(reconnection=False)
            name = f"{transport}{len(clients)}"
            heard[name] = []
            sio.on(
                "chat-message", lambda m, n=name: heard[n].append(m["message"])
            )  # fmt: skip
            await sio.connect(url, transports=[transport], wait_timeout=10)
            assert sio.transport() == transport
            clients.append(sio)
            answer = await sio.call(
                "join-room", {"roomId": "proxied", "userId": name, "userName": name}, timeout=10
            )
            assert answer["ok"], answer
            answers.append(answer)
        assert len(answers[-1]["participants"]) == 2
        # Someone on node b directly meets the three who came through nginx.
        await direct.connect()
        met = await direct.join("proxied", "direct")
        assert sorted(p["userId"] for p in met["participants"]) == sorted(heard)
        await direct.call("chat-message", {"message": "through the proxy"})
        for name in heard:
            await until(lambda n=name: "through the proxy" in heard[n], what=f"chat at {name}")
        await asyncio.sleep(0.5)  # long-polling sessions keep working (each poll, one node)
        for sio in clients:
            assert sio.connected
    finally:
        await direct.close()
        for sio in clients:
            await sio.disconnect()
        nginx.terminate()
        nginx.wait(10)
