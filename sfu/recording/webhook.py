"""The recording webhook: the sidecar JSON POSTed to ``recording.webhook_url`` when a recording
starts, ends and fails, signed, retried with backoff, never in the recorder's way.

``notify`` only queues (a bounded queue: when a receiver is down for long, the newest events
beyond it are dropped and logged); one background task delivers in order. Each attempt is
signed anew (docs/recording.md shows how to check it)::

    X-SFU-Event: recording.started | recording.ended | recording.failed
    X-SFU-Delivery: <one id per event, the same on every retry>
    X-SFU-Timestamp: <unix seconds of this attempt>
    X-SFU-Signature: sha256=<hex HMAC-SHA256(webhook_secret, timestamp + "." + body)>

The secret and the URL's credentials and query are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from sfu.settings import RecordingSettings

log = logging.getLogger(__name__)

EVENTS = {"started": "recording.started", "ended": "recording.ended", "failed": "recording.failed"}
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0)  # 9 attempts over about 3 minutes
ATTEMPT_TIMEOUT = 10.0
QUEUE_SIZE = 1000


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-SFU-Signature`` value: covers the timestamp, so an old request cannot be
    replayed with a fresh one."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def safe_url(url: str) -> str:
    """``url`` for logs: no user, password or query (which may hold a token)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    return f"{parts.scheme}://{host}{port}{parts.path}"


@dataclass(slots=True)
class Delivery:
    event: str  # recording.started, ...
    delivery_id: str
    body: bytes


class Webhooks:
    """Delivers recording events; ``settings()`` is read at each attempt (live changes)."""

    def __init__(self, settings: Callable[[], RecordingSettings]) -> None:
        self._settings = settings
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(QUEUE_SIZE)
        self._worker: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.retry_delays = RETRY_DELAYS
        self.delivered = 0
        self.given_up = 0
        self._warned_unsigned = False

    def notify(self, kind: str, meta: dict[str, Any]) -> None:
        """Queue ``meta`` (a sidecar) as event ``kind`` (started, ended, failed). Never blocks."""
        if not self._settings().webhook_url:
            return
        body = json.dumps(meta, separators=(",", ":")).encode()
        item = Delivery(EVENTS[kind], uuid.uuid4().hex, body)
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            log.warning("recording webhook: queue full, %s of %s dropped", item.event, meta["id"])
            return
        if self._worker is None or self._worker.done():
            self._worker = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._deliver(item)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop later deliveries
                log.exception("recording webhook %s", item.event)
            finally:
                self._queue.task_done()

    async def _deliver(self, item: Delivery) -> None:
        for attempt, delay in enumerate((*self.retry_delays, None)):
            settings = self._settings()
            url = settings.webhook_url
            if not url:
                return  # switched off meanwhile
            problem = await self._attempt(item, url, settings)
            if problem is None:
                self.delivered += 1
                return
            if delay is None:
                self.given_up += 1
                log.warning(
                    "recording webhook %s to %s: %s; given up after %d attempts",
                    item.event,
                    safe_url(url),
                    problem,
                    attempt + 1,
                )
                return
            log.info(
                "recording webhook %s to %s: %s; retry in %.0f s",
                item.event,
                safe_url(url),
                problem,
                delay,
            )
            await asyncio.sleep(delay)

    async def _attempt(self, item: Delivery, url: str, settings: RecordingSettings) -> str | None:
        """One POST; None when the receiver took it (2xx), else what went wrong."""
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "sfu-recording-webhook",
            "X-SFU-Event": item.event,
            "X-SFU-Delivery": item.delivery_id,
            "X-SFU-Timestamp": timestamp,
        }
        secret = settings.webhook_secret
        if secret is not None:
            headers["X-SFU-Signature"] = sign(secret.get_secret_value(), timestamp, item.body)
        elif not self._warned_unsigned:
            self._warned_unsigned = True
            log.warning("recording webhook: no recording.webhook_secret, requests are unsigned")
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                url,
                data=item.body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT),
                allow_redirects=False,
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return type(exc).__name__ + (f": {exc}" if isinstance(exc, OSError) else "")

    async def close(self, timeout: float = 5.0) -> None:
        """Shutdown: give queued events ``timeout`` seconds to go out, then stop."""
        if self._worker is not None and not self._worker.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout)
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._worker = None
        if self._session is not None:
            await self._session.close()
            self._session = None
