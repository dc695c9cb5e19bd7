"""docs/configuration.md is generated from the settings model and must match it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from sfu.config_file import EXAMPLE_TOML, FileModel, env_name, render_configuration_doc
from sfu.settings import ServerSettings, Settings, SettingsError, load_settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def model_keys() -> list[str]:
    keys = []
    for section, info in Settings.model_fields.items():
        model: type[BaseModel] = info.annotation  # type: ignore[assignment]
        keys += [f"{section}.{name}" for name in model.model_fields]
    return keys


def section_text(doc: str, section: str) -> str:
    """The part of the doc under ``## `[section]` ``, up to the next section heading."""
    match = re.search(rf"^## `\[{section}\]`$(.*?)(?=^## |\Z)", doc, re.M | re.S)
    assert match, f"no section [{section}] in docs/configuration.md"
    return match.group(1)


def test_doc_matches_the_model() -> None:
    assert DOC.read_text(encoding="utf-8") == render_configuration_doc(), (
        "docs/configuration.md is out of date: run scripts/gen-config-doc"
    )


def test_every_key_is_documented_in_its_section() -> None:
    doc = DOC.read_text(encoding="utf-8")
    keys = model_keys()
    assert len(keys) > 40 and "server.port" in keys and "limits.other_burst" in keys
    for key in keys:
        section, name = key.split(".")
        rows = [
            line
            for line in section_text(doc, section).splitlines()
            if line.startswith(f"| `{name}` |")
        ]
        assert len(rows) == 1, f"{key} is not documented once in [{section}]"
        assert f"`{env_name(key)}`" in rows[0]
    for name in ("PORT", "CLIENT_URL", "SFU_CONFIG", "sfu.toml", "--config"):
        assert name in doc
    # Nested tables are described field by field.
    assert "| `urls` |" in section_text(doc, "ice")


def test_doc_rows_show_type_default_and_description() -> None:
    server = section_text(render_configuration_doc(), "server")
    [port] = [line for line in server.splitlines() if line.startswith("| `port` |")]
    cells = [cell.strip() for cell in port.strip("|").split(" | ")]
    assert cells == [
        "`port`",
        "integer, 1..65535",
        "`5000`",
        "`SFU_SERVER__PORT`",
        ServerSettings.model_fields["port"].description
        + " Read at start-up: a live change needs a restart.",
    ]


def test_a_model_change_changes_the_doc(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard can fail: editing a description makes the checked-in doc stale."""
    before = render_configuration_doc()
    monkeypatch.setattr(
        ServerSettings.model_fields["host"], "description", "A different description."
    )
    after = render_configuration_doc()
    assert after != before and "A different description." in after


def test_example_is_a_valid_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "CLIENT_URL", "SFU_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    data = tomllib.loads(EXAMPLE_TOML)
    FileModel.model_validate(data)
    path = tmp_path / "example.toml"
    path.write_text(EXAMPLE_TOML)
    try:
        settings = load_settings(path)
    except SettingsError as exc:  # an SFU_* variable of the caller's environment
        pytest.fail(str(exc))
    assert settings.rooms.default_mode == "sfu" and len(settings.ice.servers) == 2
    assert EXAMPLE_TOML in render_configuration_doc()
