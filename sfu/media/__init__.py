"""The SFU media layer: forwards publishers' encoded media to subscribers (docs/sfu.md)."""

from .frames import EncodedFrame
from .router import Router

__all__ = ["EncodedFrame", "Router"]
