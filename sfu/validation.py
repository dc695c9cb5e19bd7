"""Shapes and limits of what clients send: one place that says what is acceptable.

The payload models check types strictly; :class:`Limits` checks the lengths and characters
that come from settings. Any failure raises :class:`~sfu.refusal.Refusal` (mostly
``invalid_payload``) with a message for the client.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from sfu.refusal import Refusal
from sfu.settings import LimitsSettings

_ID = re.compile(r"[A-Za-z0-9_-]+")  # fullmatch: "$" would let a final newline through


class Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class MediaIn(Payload):
    audio: StrictBool | None = None
    video: StrictBool | None = None
    screen: StrictBool | None = None


class JoinRoomIn(Payload):
    roomId: StrictStr
    userId: StrictStr
    userName: StrictStr
    mode: Literal["p2p", "sfu"] | None = None
    media: MediaIn | None = None
    rejoinToken: StrictStr | None = None
    # Access (docs/security.md): a join token, the room's password, and for a join that
    # creates the room its access policy (with ``password``, the password it sets).
    token: StrictStr | None = None
    password: StrictStr | None = None
    access: Literal["open", "password", "token"] | None = None
    # The meeting's display name, used only when this join creates the room.
    roomName: StrictStr | None = None


class SignalSendIn(Payload):
    targetUserId: StrictStr
    userId: StrictStr
    signal: dict[str, Any]


class ChatMessageIn(Payload):
    message: StrictStr


class EmojiReactionIn(Payload):
    emoji: StrictStr


class RaiseHandIn(Payload):
    raised: StrictBool


class LocalRecordingIn(Payload):
    recording: StrictBool


class CreateRoomIn(Payload):
    roomId: StrictStr | None = None
    mode: Literal["p2p", "sfu"] = "p2p"
    access: Literal["open", "password", "token"] | None = None
    password: StrictStr | None = None
    maxParticipants: StrictInt | None = Field(None, ge=1)
    name: StrictStr | None = None  # the meeting's display name (roomName)


# -- moderation (docs/protocol.md "Moderation") ----------------------------------------------
class TargetIn(Payload):
    userId: StrictStr


class SetRoleIn(TargetIn):
    role: Literal["moderator", "participant"]


class MuteParticipantIn(TargetIn):
    kind: Literal["audio", "video"]


class RemoveParticipantIn(TargetIn):
    reason: StrictStr | None = None


class LockRoomIn(Payload):
    locked: StrictBool


class LobbyAdmitIn(Payload):
    requestId: StrictStr


class LobbyDenyIn(LobbyAdmitIn):
    reason: StrictStr | None = None


M = TypeVar("M", bound="Payload")


def parse(model: type[M], data: Any) -> M:
    """Validate ``data`` against ``model``; one readable line on failure."""
    if not isinstance(data, dict):
        raise Refusal("invalid_payload", "payload must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise Refusal("invalid_payload", f"{where}: {first['msg']}") from None


class Limits:
    """Length and character checks driven by the ``limits`` settings."""

    def __init__(self, settings: LimitsSettings) -> None:
        self.s = settings

    def ident(self, value: str, what: str) -> str:
        if not 1 <= len(value) <= self.s.id_max_length or not _ID.fullmatch(value):
            raise Refusal(
                "invalid_payload",
                f"{what} must be 1-{self.s.id_max_length} characters of A-Z a-z 0-9 _ -",
            )
        return value

    def text(self, value: str, what: str, max_length: int) -> str:
        """Trimmed text without control characters, 1..max_length long."""
        cleaned = "".join(
            ch for ch in value if unicodedata.category(ch) not in ("Cc", "Cf") or ch == "\u200d"
        ).strip()
        if not cleaned:
            raise Refusal("invalid_payload", f"{what} must not be empty")
        if len(cleaned) > max_length:
            raise Refusal("invalid_payload", f"{what} is longer than {max_length} characters")
        return cleaned

    def name(self, value: str) -> str:
        return self.text(value, "userName", self.s.name_max_length)

    def room_name(self, value: str | None, what: str = "roomName") -> str | None:
        """A meeting's display name ("Weekly design review"): text like a user name, shown
        as text by the app; None (or only blanks) means unnamed."""
        if value is None:
            return None
        # Refused, not stripped like a user name's: a name with a control character (a tab,
        # a newline included) is not what anyone typed into the form's one line.
        if any(unicodedata.category(ch) in ("Cc", "Cf") and ch != "\u200d" for ch in value):
            raise Refusal("invalid_payload", f"{what} must not contain control characters")
        if not value.strip():
            return None  # an empty form field
        return self.text(value, what, self.s.room_name_max_length)

    def chat(self, value: str) -> str:
        # Chat keeps newlines; other control characters go.
        lines = [
            self.text(line, "message", 10**9) if line.strip() else "" for line in value.split("\n")
        ]
        text = "\n".join(lines).strip()
        if not text:
            raise Refusal("invalid_payload", "message must not be empty")
        if len(text) > self.s.chat_max_length:
            raise Refusal(
                "invalid_payload", f"message is longer than {self.s.chat_max_length} characters"
            )
        return text

    def password(self, value: str) -> str:
        """A room password: 1..128 characters, kept as given (never trimmed, never logged)."""
        if not 1 <= len(value) <= 128:
            raise Refusal("invalid_payload", "password must be 1-128 characters")
        return value

    def reason(self, value: str | None) -> str | None:
        """A moderator's optional reason (removal, lobby denial), shown to its target."""
        return None if value is None else self.text(value, "reason", 200)

    def emoji(self, value: str) -> str:
        return self.text(value, "emoji", self.s.emoji_max_length)
