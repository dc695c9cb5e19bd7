"""Strict JSON on the Socket.IO wire (sfu/wire.py): what a browser could have written, only."""

from __future__ import annotations

import json

import pytest

from sfu.wire import MAX_INT_DIGITS, WireError, dumps, loads

ACCEPTED = [
    ('{"a": 1}', {"a": 1}),
    ("[1, 2.5, -3e2, true, false, null]", [1, 2.5, -300.0, True, False, None]),
    ('"Zo\\u00eb \\ud83d\\ude00"', "Zoë 😀"),  # a surrogate *pair* is one character
    ("1" * MAX_INT_DIGITS, int("1" * MAX_INT_DIGITS)),
    ("-" + "9" * MAX_INT_DIGITS, -int("9" * MAX_INT_DIGITS)),
    ("[" * 32 + "]" * 32, json.loads("[" * 32 + "]" * 32)),
    ('{"k": "' + "x" * 10000 + '"}', {"k": "x" * 10000}),
]

REFUSED = [
    ("NaN", "NaN is not JSON"),
    ('{"x": Infinity}', "Infinity is not JSON"),
    ("[-Infinity]", "-Infinity is not JSON"),
    ("1e999", "number out of range"),
    ("-1e400", "number out of range"),
    ("1" * (MAX_INT_DIGITS + 1), "at most"),
    ("[" * 33 + "]" * 33, "nesting deeper than 32"),
    ('{"a":' * 33 + "1" + "}" * 33, "nesting deeper than 32"),
    ("[" * 5000 + "]" * 5000, "nesting deeper"),  # past Python's recursion limit
    ('"\\ud800"', "lone surrogate"),
    ('{"\\udfff": 1}', "lone surrogate"),  # keys too
    ('["ok", "a\\udc00b"]', "lone surrogate"),
    ("{'a': 1}", "not JSON"),
    ("[1, 2", "not JSON"),
    ("", "not JSON"),
    (b"\xff\xfe", "not JSON"),
]


@pytest.mark.parametrize(("text", "value"), ACCEPTED)
def test_standard_json_is_read_as_python_reads_it(text: str, value: object) -> None:
    assert loads(text) == value


@pytest.mark.parametrize(("text", "why"), REFUSED)
def test_what_a_browser_cannot_have_sent_is_refused(text: str | bytes, why: str) -> None:
    with pytest.raises(WireError, match=why.replace("(", r"\(")):
        loads(text)


def test_depth_is_the_callers() -> None:
    assert loads("[[[]]]", max_depth=3) == [[[]]]
    with pytest.raises(WireError):
        loads("[[[[]]]]", max_depth=3)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {"x": [float("-inf")]}])
def test_the_server_never_writes_what_a_browser_cannot_read(value: object) -> None:
    with pytest.raises(ValueError):
        dumps(value)


def test_written_json_is_compact_and_reads_back() -> None:
    value = {"a": [1, "é", None]}
    text = dumps(value)
    assert text == '{"a":[1,"\\u00e9",null]}'
    assert loads(text) == value
