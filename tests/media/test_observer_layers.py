"""A recording (a FrameObserver) asks for a keyframe while it is to move to another
simulcast layer: it can only enter one at a keyframe, and a publisher sends those only
when asked. Pure: a stand-in producer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sfu.media.observer import FrameObserver


@dataclass(eq=False)  # hashable by identity, as a Producer
class Stand:
    observer_target: int | None
    observer_layer: int | None
    kind: str = "video"


def producer(target: int | None, layer: int | None, kind: str = "video") -> Any:
    return Stand(target, layer, kind)


def test_a_keyframe_is_wanted_until_the_observers_are_on_their_target_layer() -> None:
    observer = FrameObserver(lambda *a: None, lambda p: None)
    assert observer.wants_keyframe(producer(1, 0))  # the top layer is back: up
    assert observer.wants_keyframe(producer(0, 1))  # the top layer paused: down
    assert observer.wants_keyframe(producer(1, None))  # none yet
    assert not observer.wants_keyframe(producer(1, 1))
    assert not observer.wants_keyframe(producer(None, None))  # not simulcast
    assert not observer.wants_keyframe(producer(1, 0, kind="audio"))
