"""What the abuse suites assert: documented error codes, quiet logs, unchanged server state."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections import deque
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PROTOCOL_DOC = REPO / "docs" / "protocol.md"

# Loggers whose tracebacks mean the server mishandled input (aiohttp: a 500's traceback).
WATCHED_LOGGERS = ("sfu", "socketio", "engineio", "aiortc", "asyncio", "aiohttp")


def _tables(section: str) -> list[set[str]]:
    """The first-column codes of each markdown table of a doc section, in order."""
    tables: list[set[str]] = []
    inside = False
    for line in section.splitlines():
        match = re.match(r"\|\s*`([a-z_]+)`\s*\|", line)
        if line.startswith("|"):
            if not inside:
                tables.append(set())
                inside = True
            if match:
                tables[-1].add(match.group(1))
        else:
            inside = False
    return tables


def _error_section() -> str:
    text = PROTOCOL_DOC.read_text()
    section = text.split("### Error codes", 1)[1]
    return re.split(r"\n#{1,3} ", section, maxsplit=1)[0]


@cache
def documented_codes() -> frozenset[str]:
    """The Socket.IO codes: docs/protocol.md's "Error codes" table, read from the doc itself
    so an undocumented code fails the tests instead of being added to a list here."""
    tables = _tables(_error_section())
    assert tables and len(tables[0]) >= 10, f"no error code table in {PROTOCOL_DOC}"
    return frozenset(tables[0])


@cache
def documented_rest_codes() -> frozenset[str]:
    """Every table of the "Error codes" section (the REST-only one too), plus each
    ``<status> `code``` the REST section names."""
    codes = set().union(*_tables(_error_section()))
    rest = PROTOCOL_DOC.read_text().split("## REST", 1)[1]
    codes |= set(re.findall(r"\b[1-5]\d\d `([a-z_]+)`", rest))
    return frozenset(codes)


def watched(record: logging.LogRecord) -> bool:
    return any(record.name == n or record.name.startswith(n + ".") for n in WATCHED_LOGGERS)


def tracebacks(records: Iterable[logging.LogRecord]) -> list[str]:
    """Watched records that carry a traceback (any level), as one line each."""
    return [
        f"{r.name} {r.levelname}: {r.getMessage()[:200]} ({r.exc_info[0].__name__})"
        for r in records
        if watched(r) and r.exc_info and r.exc_info[0] is not None
    ]


def assert_no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    found = tracebacks(caplog.records)
    assert not found, "tracebacks logged:\n" + "\n".join(found[:10])


def assert_refusal(ack: Any, *, allowed: set[str] | None = None) -> str:
    """``{"ok": false, "error": CODE, "message": str}`` with a documented CODE that is not
    ``internal_error`` (and one of ``allowed`` when given); returns the code."""
    assert isinstance(ack, dict), f"ack is not an object: {ack!r:.300}"
    assert ack.get("ok") is False, f"accepted: {ack!r:.300}"
    code = ack.get("error")
    assert code != "internal_error", f"internal_error: {ack!r:.300}"
    assert code in documented_codes(), f"undocumented error code {code!r}: {ack!r:.300}"
    assert isinstance(ack.get("message"), str), f"no message: {ack!r:.300}"
    if allowed is not None:
        assert code in allowed, f"expected one of {sorted(allowed)}, got {code!r}: {ack!r:.300}"
    return code


def plain(value: Any) -> Any:
    """Dataclasses (rooms, participants, media state) and containers as comparable data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name != "router"  # a live object of the media layer: compared apart
        }
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | deque | set | frozenset):
        items = [plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    return value


def server_snapshot(running: Any) -> dict[str, Any]:
    """Everything a refused event must leave as it was: every field of every room and
    participant (names, media state, chat, creator right, tokens), socket-room bindings,
    Socket.IO room membership, SFU sessions and producers, recordings."""
    server = running.server
    registry = server.rooms
    rooms: dict[str, Any] = {}
    for room_id, room in registry.rooms.items():
        router = room.router
        media: dict[str, Any] | None = None
        if router is not None:
            media = {
                "participants": {
                    uid: (
                        id(p.publish) if p.publish is not None else None,
                        id(p.subscribe) if p.subscribe is not None else None,
                        getattr(p.subscribe, "number", None),
                    )
                    for uid, p in router.participants.items()
                },
                "producers": sorted(router.producers),
            }
        members = server.signaling.sio.manager.rooms.get("/", {}).get(room_id) or {}
        rooms[room_id] = {**plain(room), "media": media, "sio_members": sorted(members)}
    return {
        "rooms": rooms,
        "by_sid": dict(registry._by_sid),
        "recordings": sorted(server.recordings.active),
    }
