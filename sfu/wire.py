"""Strict JSON for what crosses the Socket.IO wire, both ways.

Python's ``json`` reads and writes ``NaN`` and ``Infinity``, which no standard JSON parser
accepts: relayed to a browser, one such value makes socket.io-client drop its connection.
So what the server reads must be JSON a browser could have written (RFC 8259 values, valid
Unicode, bounded nesting and number sizes), and what it writes never holds such a value.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

MAX_INT_DIGITS = 32  # longer integer literals carry nothing a client could mean
_SURROGATE = re.compile("[\ud800-\udfff]")


class WireError(ValueError):
    """Text that is not strict JSON within the limits; the message says what is wrong."""


def _constant(name: str) -> Any:
    raise WireError(f"{name} is not JSON")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise WireError(f"integers have at most {MAX_INT_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise WireError("number out of range")
    return value


def check_value(value: Any, max_depth: int) -> None:
    """Raises WireError for nesting deeper than ``max_depth`` or strings that are not Unicode."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                raise WireError("strings must be valid Unicode (a lone surrogate)")
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise WireError(f"nesting deeper than {max_depth} levels")
            if isinstance(item, dict):
                stack.extend((k, depth) for k in item)
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise WireError("number out of range")


def loads(text: str | bytes, max_depth: int = 32) -> Any:
    """Parse strict JSON; raises WireError (never anything else) when it is not."""
    try:
        value = json.loads(text, parse_constant=_constant, parse_int=_int, parse_float=_float)
    except WireError:
        raise
    except RecursionError:
        raise WireError(f"nesting deeper than {max_depth} levels") from None
    except (ValueError, TypeError) as exc:  # JSONDecodeError, bad UTF-8
        raise WireError(f"not JSON: {str(exc)[:80]}") from None
    check_value(value, max_depth)
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """Serialise as standard JSON; a NaN or infinity raises ValueError instead of going out."""
    kwargs.setdefault("separators", (",", ":"))
    return json.dumps(value, allow_nan=False, **kwargs)


class StrictJson:
    """The ``json`` interface python-socketio's packets call, with a live depth limit."""

    def __init__(self, max_depth: Callable[[], int]) -> None:
        self._max_depth = max_depth

    def loads(self, text: str | bytes, **_: Any) -> Any:
        return loads(text, self._max_depth())

    @staticmethod
    def dumps(value: Any, **kwargs: Any) -> str:
        return dumps(value, **kwargs)
