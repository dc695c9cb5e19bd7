"""Layers import only downward (docs/architecture.md), checked on the code's imports.

command line (cli) > edges (sfu/server/) > domain (rooms, media, recording, loadtest) >
support (settings, validation, wire, refusal, ratelimit, metrics, config_file, access). Imports
under ``if TYPE_CHECKING:`` only name a type and are allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

SFU = Path(__file__).resolve().parents[1] / "sfu"
LAYERS = {
    "support": {
        "settings",
        "validation",
        "wire",
        "refusal",
        "ratelimit",
        "metrics",
        "config_file",
        "access",
    },
    "domain": {"rooms", "media", "recording", "loadtest", "replay", "cluster"},
    "edges": {"server"},
    "cli": {"cli", "__main__"},
}
RANK = {"support": 0, "domain": 1, "edges": 2, "cli": 3}


def layer_of(module: str) -> str | None:
    """``sfu.media.router`` -> "domain"; None for what is not the project's."""
    parts = module.split(".")
    if parts[0] != "sfu" or len(parts) < 2:
        return None
    return next((name for name, tops in LAYERS.items() if parts[1] in tops), None)


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    package = ".".join(path.relative_to(SFU.parent).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from package upwards
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.append((node.lineno, base))
    return found


def test_the_check_ranks_modules() -> None:
    assert layer_of("sfu.media.router") == "domain"
    assert layer_of("sfu.server.signaling") == "edges"
    assert layer_of("sfu.settings") == "support"
    assert layer_of("aiortc") is None


def test_every_import_goes_downward() -> None:
    upward = []
    for path in sorted(SFU.rglob("*.py")):
        own = layer_of(".".join(path.relative_to(SFU.parent).with_suffix("").parts))
        if own is None:
            continue
        for line, module in imports(path):
            target = layer_of(module)
            if target is not None and RANK[target] > RANK[own]:
                upward.append(f"{path.relative_to(SFU.parent)}:{line}: {own} imports {module}")
    assert upward == [], "\n".join(upward)
