"""Private API of the libraries stays in the modules made for it, checked on the code's AST.

aiortc's and aioice's internals are reached only from sfu/media/aiortc/ (behind the
contract tests in tests/media/test_aiortc_contract.py), python-socketio's only from
sfu/server/socketio_server.py (tests/server/test_socketio_contract.py). Anywhere else an
attribute that starts with ``_`` may be read only on ``self`` or ``cls``: the object's own.
"""

from __future__ import annotations

import ast
from pathlib import Path

SFU = Path(__file__).resolve().parents[1] / "sfu"
ALLOWED = [SFU / "media" / "aiortc", SFU / "server" / "socketio_server.py"]
_ATTRIBUTE_CALLS = {"getattr", "setattr", "hasattr", "delattr"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_reaches(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            name, owner = node.attr, node.value
            if not _private(name):
                continue
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            found.append((node.lineno, ast.unparse(node)))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _ATTRIBUTE_CALLS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_the_check_finds_what_it_looks_for() -> None:
    code = (
        "receiver._RTCRtpReceiver__codecs\n"
        "getattr(sender, '_ssrc')\n"
        "self._mine\n"
        "cls._table\n"
        "x.__class__\n"
        "getattr(x, '__name__')\n"
        "x.public\n"
    )
    assert [text for _, text in private_reaches(ast.parse(code))] == [
        "receiver._RTCRtpReceiver__codecs",
        "getattr(sender, '_ssrc')",
    ]


def test_no_module_outside_the_adapters_reaches_private_attributes() -> None:
    offenders = []
    for path in sorted(SFU.rglob("*.py")):
        if any(path == allowed or allowed in path.parents for allowed in ALLOWED):
            continue
        for line, text in private_reaches(ast.parse(path.read_text(), str(path))):
            offenders.append(f"{path.relative_to(SFU.parent)}:{line}: {text}")
    assert offenders == [], (
        "move these into sfu/media/aiortc/ (or sfu/server/socketio_server.py):\n"
        + ("\n".join(offenders))
    )
