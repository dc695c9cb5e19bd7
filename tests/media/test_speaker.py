"""The one active-speaker rule (sfu/media/speaker.py), as a table of moments."""

from __future__ import annotations

import pytest

from sfu.media.speaker import ActiveSpeaker

LOUD, SOFT, QUIET = 0.3, 0.05, 0.001  # QUIET is below the speaking level

# (time, levels, speaker afterwards)
TABLES: dict[str, list[tuple[float, dict[str, float], str | None]]] = {
    "the first voice takes the stage at once": [
        (0.0, {"a": QUIET, "b": QUIET}, None),
        (0.1, {"a": SOFT, "b": QUIET}, "a"),
    ],
    "a louder voice must hold while the speaker still speaks": [
        (0.0, {"a": SOFT}, "a"),
        (0.1, {"a": SOFT, "b": LOUD}, "a"),
        (0.6, {"a": SOFT, "b": LOUD}, "a"),
        (1.2, {"a": SOFT, "b": LOUD}, "b"),
    ],
    "when the speaker falls silent the loudest takes over at once": [
        (0.0, {"a": LOUD}, "a"),
        (0.1, {"a": QUIET, "b": SOFT}, "b"),
    ],
    "silence keeps the last speaker": [
        (0.0, {"a": LOUD}, "a"),
        (5.0, {"a": QUIET, "b": QUIET}, "a"),
        (9.0, {}, "a"),
    ],
    "a candidate that stops being loudest starts over": [
        (0.0, {"a": SOFT}, "a"),
        (0.1, {"a": SOFT, "b": LOUD}, "a"),
        (0.5, {"a": LOUD, "b": SOFT}, "a"),
        (0.9, {"a": SOFT, "b": LOUD}, "a"),  # b's hold begins again here
        (1.5, {"a": SOFT, "b": LOUD}, "a"),
        (2.0, {"a": SOFT, "b": LOUD}, "b"),
    ],
}


@pytest.mark.parametrize("name", list(TABLES))
def test_tables(name: str) -> None:
    stage = ActiveSpeaker()
    for i, (now, levels, want) in enumerate(TABLES[name]):
        assert stage.update(levels, now) == want, f"row {i}"


def test_a_speaker_who_leaves_gives_the_stage_to_the_next_voice_at_once() -> None:
    stage = ActiveSpeaker()
    stage.update({"a": LOUD, "b": SOFT}, 0.0)
    stage.forget("a")
    assert stage.speaker is None
    assert stage.update({"b": SOFT}, 0.1) == "b"
