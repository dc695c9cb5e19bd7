"""A watchdog for asyncio tests: a test still running after ``seconds`` has every task's stack
printed and is cancelled, so a hang fails with what it waited on instead of stalling CI."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

HANG_SECONDS = 240.0  # far above any test's own timeouts (the slowest waits 45 s)


def arm(seconds: float = HANG_SECONDS) -> Callable[[], None]:
    """Starts the watchdog on the running loop; returns the call that stops it."""
    loop = asyncio.get_running_loop()

    def fire() -> None:
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        print(f"\n=== test hung for {seconds:.0f} s: {len(tasks)} tasks ===", file=sys.stderr)
        for task in tasks:
            task.print_stack(limit=12, file=sys.stderr)
        for task in tasks:
            task.cancel()

    handle = loop.call_later(seconds, fire)
    return handle.cancel
