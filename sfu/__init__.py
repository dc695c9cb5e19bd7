"""sfu: a Python meeting server with P2P signaling, an aiortc SFU and server recordings."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sfu")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
