"""``sfu serve --workers N``: N server processes on one port, one machine's cores all working.

Each worker is a whole server (its own event loop, rooms, SFU routers and UDP sockets) and a
node of the cluster on ``server.redis_url`` named ``<node id>-<n>``; they share the HTTP port
with SO_REUSEPORT, so the kernel spreads new connections over them, and a room lives on one
worker as it lives on one node. This process only starts them, restarts one that dies, and
passes SIGTERM/SIGINT on; it exits when they have all stopped.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from multiprocessing.process import BaseProcess
from typing import Any

from sfu.settings import Settings

log = logging.getLogger("sfu.server.workers")

RESTART_PAUSE_SECONDS = 1.0  # a worker that keeps dying is not restarted in a tight loop
STARTUP_SECONDS = 10.0  # a worker that dies this soon failed to start: everything stops


def worker_count(value: str) -> int:
    """``auto`` (one per core) or a positive number; ValueError otherwise."""
    if value == "auto":
        return max(1, os.cpu_count() or 1)
    count = int(value)
    if not 1 <= count <= 256:
        raise ValueError("between 1 and 256")
    return count


def worker_settings(settings: Settings, index: int, node_base: str) -> Settings:
    """Worker ``index``'s settings: its node id, and in single-port mode its own UDP port
    (``ice.udp_port`` + index: one UDP socket cannot be shared by processes)."""
    server = settings.server.model_copy(update={"node_id": f"{node_base}-{index + 1}"})
    ice = settings.ice
    if ice.udp_port is not None:
        ice = ice.model_copy(update={"udp_port": ice.udp_port + index})
    return settings.model_copy(update={"server": server, "ice": ice})


def _work(settings: Settings) -> None:
    from sfu.server.app import run

    raise SystemExit(run(settings, worker=True))


def run_workers(settings: Settings, count: int) -> int:
    """Runs ``count`` workers until SIGTERM/SIGINT; 0 when they all stopped cleanly."""
    from sfu.cluster.cluster import default_node_id
    from sfu.server.app import configure_logging

    configure_logging(settings.server.log_level)
    base = settings.server.node_id or default_node_id()
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no shared loop
    stopping = False

    started: dict[int, float] = {}

    def start(index: int) -> BaseProcess:
        started[index] = time.monotonic()
        process = context.Process(
            target=_work, args=(worker_settings(settings, index, base),), name=f"worker-{index}"
        )
        process.start()
        log.info("worker %d (node %s-%d) started: pid %s", index + 1, base, index + 1, process.pid)
        return process

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for process in workers:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    workers = [start(i) for i in range(count)]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    codes: dict[int, int] = {}
    while len(codes) < count:
        time.sleep(0.2)
        for index, process in enumerate(workers):
            if index in codes or process.is_alive():
                continue
            code = process.exitcode or 0
            if stopping:
                codes[index] = code
                continue
            if time.monotonic() - started[index] < STARTUP_SECONDS:
                log.error("worker %d failed at start-up (%s): stopping", index + 1, code)
                stop(signal.SIGTERM, None)
                codes[index] = code or 1
                continue
            log.error("worker %d exited (%s): restarting it", index + 1, code)
            time.sleep(RESTART_PAUSE_SECONDS)
            workers[index] = start(index)
    log.info("all %d workers stopped", count)
    return 0 if all(code == 0 for code in codes.values()) else 1
