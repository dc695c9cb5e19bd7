"""Settings: sources and their precedence, validation with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sfu.settings import SettingsError, load_settings

TOML = """
[server]
port = 6000
host = "0.0.0.0"

[recording]
layout = "speaker"
directory = "/tmp/recs"

[[ice.servers]]
urls = "turn:turn.example.org:3478"
username = "u"
credential = "p"
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "CLIENT_URL", "SFU_CONFIG", "SFU_SERVER__PORT", "SFU_RECORDING__LAYOUT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "sfu.toml"
    path.write_text(TOML)
    return path


def test_defaults() -> None:
    s = load_settings()
    assert (s.server.host, s.server.port) == ("127.0.0.1", 5000)
    assert s.ice.servers == []  # never a public STUN server by default
    assert s.recording.directory == Path("recordings")
    assert s.auth.admin_token is None


def test_precedence_file_guide_env_flags(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings(config)
    assert s.server.port == 6000 and s.server.host == "0.0.0.0"
    assert s.recording.layout == "speaker" and s.ice.servers[0].urls == [
        "turn:turn.example.org:3478"
    ]
    monkeypatch.setenv("SFU_CONFIG", str(config))
    assert load_settings().server.port == 6000  # SFU_CONFIG names the file
    monkeypatch.setenv("PORT", "6100")
    monkeypatch.setenv("CLIENT_URL", "https://meet.example.org")
    s = load_settings()
    assert s.server.port == 6100 and s.server.cors_origins == ["https://meet.example.org"]
    monkeypatch.setenv("SFU_SERVER__PORT", "6200")
    monkeypatch.setenv("SFU_RECORDING__LAYOUT", "grid")
    s = load_settings()
    assert s.server.port == 6200 and s.recording.layout == "grid"
    assert s.server.host == "0.0.0.0"  # untouched keys keep the file's value
    s = load_settings(overrides={"server": {"port": 6300}})
    assert s.server.port == 6300 and s.server.host == "0.0.0.0"


@pytest.mark.parametrize(
    ("env", "value", "key"),
    [
        ("SFU_SERVER__PORT", "99999", "server.port"),
        ("SFU_SERVER__PORT", "abc", "server.port"),
        ("SFU_RECORDING__LAYOUT", "mosaic", "recording.layout"),
        ("PORT", "-1", "server.port"),
    ],
)
def test_invalid_env_value_names_the_key(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, key: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert key in message and "\n" not in message


def test_invalid_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[recording]\nbackground = "red"\n')
    with pytest.raises(SettingsError, match="recording.background"):
        load_settings(bad)
    bad.write_text("[server]\nprot = 1\n")
    with pytest.raises(SettingsError, match="server.prot"):
        load_settings(bad)
    bad.write_text("[[ice.servers]]\nurls = 'http://x'\n")
    with pytest.raises(SettingsError, match="ice.servers"):
        load_settings(bad)
    bad.write_text("this is not toml")
    with pytest.raises(SettingsError, match="bad.toml"):
        load_settings(bad)
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "missing.toml")
