"""The active speaker: one rule for the room and for the recording's speaker layout.

Levels are linear amplitudes 0..1: RFC 6464 levels from RTP (``10 ** (-dBov / 20)``, as the
router reports them) or the RMS of decoded audio (the recorder's own measure); 0.01 is
about -40 dBov either way. The loudest participant speaking (at or above the threshold)
takes the stage. While the current speaker still speaks, a new voice must stay the
loudest for ``hold`` seconds, so two voices of one level do not make the layout flicker;
when the current speaker is silent the loudest takes over at once; silence keeps the
last speaker. Pure: the caller gives the time.
"""

from __future__ import annotations

SPEAKING_LEVEL = 0.01  # about -40 dBov / dBFS: quieter is not speaking
HOLD_SECONDS = 1.0


class ActiveSpeaker:
    """Follows who speaks; :attr:`speaker` is the participant on the stage (None: nobody yet)."""

    def __init__(self, threshold: float = SPEAKING_LEVEL, hold: float = HOLD_SECONDS) -> None:
        self.threshold = threshold
        self.hold = hold
        self.speaker: str | None = None
        self._candidate: str | None = None
        self._since = 0.0

    def update(self, levels: dict[str, float], now: float) -> str | None:
        """New levels of the participants present; returns the speaker after them."""
        speaking = {user: level for user, level in levels.items() if level >= self.threshold}
        loudest = max(speaking, key=lambda user: speaking[user], default=None)
        if loudest is None or loudest == self.speaker:
            self._candidate = None
            return self.speaker
        if self.speaker is not None and self.speaker in speaking:
            if self._candidate != loudest:
                self._candidate, self._since = loudest, now
                return self.speaker
            if now - self._since < self.hold:
                return self.speaker
        self.speaker, self._candidate = loudest, None
        return self.speaker

    def forget(self, user_id: str) -> None:
        """The participant left the stage (left the room): the next voice takes it at once."""
        if self.speaker == user_id:
            self.speaker = None
        if self._candidate == user_id:
            self._candidate = None
