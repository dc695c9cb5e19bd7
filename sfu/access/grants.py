"""Grants: what a participant may do in a room, from its join token or the defaults.

A token's ``grants`` claim names them; a join without a token gets the defaults (join,
publish everything, subscribe, chat). Moderation and recording rights also come with the
moderator role (sfu/rooms.py), which a token's ``moderate`` grant gives at join.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

# The SFU's publish sources (sfu/media/router.py SOURCES) and the grant each needs.
SOURCE_GRANT = {
    "microphone": "audio",
    "camera": "video",
    "screen": "screen",
    "screen-audio": "screen",
}
KINDS = ("audio", "video", "screen")
# Names for `sfu token create --grant/--deny`: the claims' names, publish:KIND for one kind.
NAMES = (
    "join",
    "publish",
    "publish:audio",
    "publish:video",
    "publish:screen",
    "subscribe",
    "chat",
    "record",
    "moderate",
    "createRoom",
)


@dataclass(frozen=True)
class Grants:
    join: bool = True
    audio: bool = True
    video: bool = True
    screen: bool = True
    subscribe: bool = True
    chat: bool = True
    record: bool = False
    moderate: bool = False
    create_room: bool = False

    @property
    def publishes(self) -> bool:
        """Any publish grant at all."""
        return self.audio or self.video or self.screen

    def may_publish(self, source: str) -> bool:
        """For an SFU source (microphone, camera, screen, screen-audio) or a kind."""
        kind = source if source in KINDS else SOURCE_GRANT.get(source, "screen")
        return bool(getattr(self, kind))

    def publish(self) -> dict[str, bool]:
        return {"audio": self.audio, "video": self.video, "screen": self.screen}

    def claims(self) -> dict[str, Any]:
        """As a token's ``grants`` claim (every grant spelled out)."""
        return {
            "join": self.join,
            "publish": self.publish(),
            "subscribe": self.subscribe,
            "chat": self.chat,
            "record": self.record,
            "moderate": self.moderate,
            "createRoom": self.create_room,
        }

    def changed(self, names: list[str], value: bool) -> Grants:
        """These grants with ``names`` (see NAMES) set to ``value``; unknown names raise."""
        updates: dict[str, bool] = {}
        for name in names:
            if name not in NAMES:
                raise ValueError(f"unknown grant {name!r} (known: {', '.join(NAMES)})")
            if name == "publish":
                updates.update(dict.fromkeys(KINDS, value))
            elif name.startswith("publish:"):
                updates[name.split(":", 1)[1]] = value
            else:
                updates["create_room" if name == "createRoom" else name] = value
        return replace(self, **updates)


DEFAULT = Grants()


def from_claim(claim: Any) -> Grants:
    """A token's ``grants`` claim (already shape-checked: a dict or None) as Grants."""
    if claim is None:
        return DEFAULT
    publish = claim.get("publish", True)
    if isinstance(publish, bool):
        kinds = dict.fromkeys(KINDS, publish)
    else:
        kinds = {k: bool(publish.get(k, False)) for k in KINDS}
    return Grants(
        join=claim.get("join", True),
        subscribe=claim.get("subscribe", True),
        chat=claim.get("chat", True),
        record=claim.get("record", False),
        moderate=claim.get("moderate", False),
        create_room=claim.get("createRoom", False),
        **kinds,
    )


def offered_sources(sdp: str, sources: dict[Any, Any]) -> list[str]:
    """The sources an SFU publish offer sends: each sending audio/video m-line's name in
    ``sources`` (by track id or mid, as the router reads it), else its kind's default."""
    found = []
    for section in re.split(r"\r?\nm=", "\n" + sdp)[1:]:
        kind = section.split(" ", 1)[0]
        if kind not in ("audio", "video"):
            continue
        if re.search(r"^a=(inactive|recvonly)\s*$", section, flags=re.M):
            continue
        mid = re.search(r"^a=mid:(\S+)", section, flags=re.M)
        track = re.search(r"^a=msid:\S+ (\S+)", section, flags=re.M)
        named = (track and sources.get(track.group(1))) or (mid and sources.get(mid.group(1)))
        found.append(named if isinstance(named, str) else DEFAULT_SOURCE[kind])
    return found


DEFAULT_SOURCE = {"audio": "microphone", "video": "camera"}
