"""The `sfu` command: serve's settings handling, the config file commands, and the admin
commands against a real server process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sfu.cli import app, main
from sfu.settings import Settings
from tests.conftest import Client, free_port

runner = CliRunner()
TOKEN = "test-admin-token"

CONFIG = """\
# Our meeting server.
[server]
# Loopback only for now.
host = "127.0.0.1"  # keep this comment
port = 6000

[rooms]
max_rooms = 20  # a small box
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No stray settings from the caller's environment; ./sfu.toml is in a fresh folder."""
    for name in list(os.environ):
        if name.upper().startswith("SFU_") or name in ("PORT", "CLIENT_URL"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "200")  # Rich tables on one line each
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "sfu.toml"
    path.write_text(CONFIG)
    return path


def sfu(*args: str) -> Any:
    return runner.invoke(app, list(args))


def one_line_error(result: Any, code: int) -> str:
    """The failure contract: the exit code, nothing on stdout, one `sfu:` line on stderr."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sfu: "), result.stderr
    return lines[0]


# -- the entry points -------------------------------------------------------------------------


def test_python_dash_m_help_and_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sfu", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    for command in ("serve", "config", "settings", "rooms", "Examples"):
        assert command in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "sfu", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.startswith("sfu ")


@pytest.mark.parametrize(
    "command",
    [
        ["serve"],
        ["config"],
        ["config", "show"],
        ["config", "get"],
        ["config", "set"],
        ["config", "unset"],
        ["config", "validate"],
        ["config", "path"],
        ["settings", "show"],
        ["settings", "set"],
        ["rooms", "list"],
        ["rooms", "show"],
        ["rooms", "close"],
        ["rooms", "kick"],
        ["rooms", "lock"],
        ["token", "create"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = sfu(*command, "--help")
    assert result.exit_code == 0
    assert "Usage: sfu " + " ".join(command) in result.stdout
    assert "Example" in result.stdout


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["config", "set", "server.port"], "Missing argument 'value'"),
        (["serve", "--port", "abc"], "'--port'"),
        (["nonsense"], "No such command 'nonsense'"),
    ],
)
def test_usage_errors_are_one_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("sfu: ") and expected in err, err


# -- serve ------------------------------------------------------------------------------------


def run_serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("SFU_")}
    return subprocess.run(
        [sys.executable, "-m", "sfu", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **(env or {})},
    )


def test_serve_invalid_flag_value_exits_2_naming_the_key() -> None:
    done = run_serve("--port", "99999")
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("sfu: invalid setting") and "server.port" in line and "99999" in line


def test_serve_invalid_env_or_file_exits_2(tmp_path: Path) -> None:
    done = run_serve(env={"SFU_ROOMS__MAX_ROOMS": "0"})
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "rooms.max_rooms" in line

    bad = tmp_path / "bad.toml"
    bad.write_text('[recording]\nlayout = "mosaic"\n')
    done = run_serve("--config", str(bad))
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "recording.layout" in line and "bad.toml" in line

    done = run_serve("--config", str(tmp_path / "missing.toml"))
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "missing.toml" in line and "not found" in line


def test_serve_layers_flags_over_env_over_file(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flags win over the environment, which wins over ./sfu.toml; run()'s code is the exit."""
    seen: list[Settings] = []

    def fake_run(settings: Settings) -> int:
        seen.append(settings)
        return 3

    monkeypatch.setattr("sfu.server.run", fake_run)
    monkeypatch.setenv("SFU_SERVER__PORT", "6100")
    monkeypatch.setenv("SFU_ROOMS__MAX_PARTICIPANTS", "5")
    result = sfu("serve", "--port", "6200", "--log-level", "debug")
    assert result.exit_code == 3, result.output
    [settings] = seen
    assert settings.server.port == 6200  # flag over env over file
    assert settings.server.log_level == "DEBUG"
    assert settings.rooms.max_participants == 5  # env
    assert settings.rooms.max_rooms == 20  # ./sfu.toml, found without --config
    assert settings.server.host == "127.0.0.1"


def test_serve_port_in_use_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(settings: Settings) -> int:
        raise OSError(98, "Address already in use")

    monkeypatch.setattr("sfu.server.run", fake_run)
    line = one_line_error(sfu("serve", "--port", "6201"), 1)
    assert "127.0.0.1:6201" in line and "Address already in use" in line


# -- config: path, show, get ------------------------------------------------------------------


def test_config_path_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = sfu("config", "path")
    assert result.exit_code == 0
    assert Path(result.stdout.strip()).resolve() == (tmp_path / "sfu.toml").resolve()
    assert "does not exist" in result.stderr
    monkeypatch.setenv("SFU_CONFIG", "/etc/sfu/from-env.toml")
    assert sfu("config", "path").stdout.strip() == "/etc/sfu/from-env.toml"
    result = sfu("config", "path", "--config", "/srv/explicit.toml")
    assert result.stdout.strip() == "/srv/explicit.toml"


def test_config_show_sources(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFU_ROOMS__MAX_PARTICIPANTS", "7")
    monkeypatch.setenv("CLIENT_URL", "http://localhost:3000")
    monkeypatch.setenv("SFU_AUTH__ADMIN_TOKEN", "hush")
    result = sfu("config", "show", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert set(shown) >= {"server.port", "recording.layout", "limits.other_burst"}
    assert shown["server.port"] == {"value": 6000, "source": "file", "origin": "sfu.toml"}
    assert shown["rooms.max_participants"] == {
        "value": 7,
        "source": "env",
        "origin": "SFU_ROOMS__MAX_PARTICIPANTS",
    }
    assert shown["server.cors_origins"]["value"] == ["http://localhost:3000"]
    assert shown["server.cors_origins"]["origin"] == "CLIENT_URL"
    assert shown["rooms.default_mode"] == {"value": "p2p", "source": "default", "origin": None}
    assert shown["auth.admin_token"]["value"] == "********"  # never printed
    assert "hush" not in result.stdout

    table = sfu("config", "show")
    assert table.exit_code == 0
    row = next(line for line in table.stdout.splitlines() if "rooms.max_participants" in line)
    assert "7" in row and "env SFU_ROOMS__MAX_PARTICIPANTS" in row
    row = next(line for line in table.stdout.splitlines() if "server.port" in line)
    assert "6000" in row and "file sfu.toml" in row


def test_config_show_without_any_file_is_defaults() -> None:
    result = sfu("config", "show", "--json")
    assert result.exit_code == 0
    assert all(v["source"] == "default" for v in json.loads(result.stdout).values())


def test_config_get(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sfu("config", "get", "server.port").stdout == "6000\n"
    assert sfu("config", "get", "recording.layout").stdout == "grid\n"
    assert sfu("config", "get", "server.cors_origins").stdout == "[]\n"
    monkeypatch.setenv("SFU_SERVER__PORT", "6111")
    result = sfu("config", "get", "server.port", "--json")
    assert json.loads(result.stdout) == {
        "key": "server.port",
        "value": 6111,
        "source": "env",
        "origin": "SFU_SERVER__PORT",
    }
    line = one_line_error(sfu("config", "get", "server.nope"), 2)
    assert "unknown setting 'server.nope'" in line


def test_config_show_reports_a_broken_source(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFU_RECORDING__FPS", "500")
    line = one_line_error(sfu("config", "show"), 2)
    assert "recording.fps" in line


# -- config: set, unset -----------------------------------------------------------------------


def test_set_keeps_comments_and_layout(config: Path) -> None:
    result = sfu("config", "set", "server.port", "8080")
    assert result.exit_code == 0, result.output
    assert "server.port = 8080" in result.stdout
    text = config.read_text()
    assert text == CONFIG.replace("port = 6000", "port = 8080")  # only that line changed

    assert sfu("config", "set", "recording.layout", "speaker").exit_code == 0
    assert sfu("config", "set", "server.cors_origins", '["https://a.example"]').exit_code == 0
    assert sfu("config", "set", "recording.auto_start", "true").exit_code == 0
    text = config.read_text()
    for kept in ("# Our meeting server.", "# Loopback only for now.", "# keep this comment"):
        assert kept in text
    assert "[recording]" in text and 'layout = "speaker"' in text
    shown = json.loads(sfu("config", "show", "--json").stdout)
    assert shown["server.cors_origins"]["value"] == ["https://a.example"]
    assert shown["recording.auto_start"]["value"] is True
    assert shown["recording.layout"]["source"] == "file"


def test_set_value_forms(config: Path) -> None:
    """TOML values when they parse, plain text otherwise, text when the model wants text."""
    assert sfu("config", "set", "server.host", "0.0.0.0").exit_code == 0
    assert sfu("config", "set", "recording.background", "#202020").exit_code == 0
    assert sfu("config", "set", "recording.preset", "1").exit_code == 0  # a str field
    assert sfu("config", "set", "rooms.empty_room_ttl_seconds", "2.5").exit_code == 0
    assert sfu("config", "set", "ice.servers", '[{urls = ["stun:127.0.0.1:3478"]}]').exit_code == 0
    text = config.read_text()
    assert 'host = "0.0.0.0"' in text
    assert 'background = "#202020"' in text
    assert 'preset = "1"' in text
    assert "empty_room_ttl_seconds = 2.5" in text
    result = sfu("config", "validate")
    assert result.exit_code == 0, result.output
    assert json.loads(sfu("config", "get", "ice.servers", "--json").stdout)["value"] == [
        {"urls": ["stun:127.0.0.1:3478"], "username": None, "credential": None}
    ]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("server.prot", "8080", "unknown setting 'server.prot'"),
        ("nosection.port", "8080", "unknown setting 'nosection.port'"),
        ("server", "8080", "unknown setting 'server'"),
        ("server.port", "99999", "invalid setting server.port"),
        ("server.port", "-1", "invalid setting server.port"),
        ("server.port", "eighty", "invalid setting server.port"),
        ("server.log_level", "LOUD", "invalid setting server.log_level"),
        ("recording.background", "red", "invalid setting recording.background"),
        ("ice.servers", '[{urls = "http://x"}]', "invalid setting ice.servers"),
        ("recording.width", "1281", "invalid setting recording.width"),
    ],
)
def test_set_refuses_bad_key_or_value_and_leaves_file_unchanged(
    config: Path, key: str, value: str, expected: str
) -> None:
    before = config.read_bytes()
    line = one_line_error(sfu("config", "set", key, value), 2)
    assert expected in line
    assert config.read_bytes() == before


def test_set_creates_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "etc" / "sfu.toml"
    monkeypatch.setenv("SFU_CONFIG", str(target))
    result = sfu("config", "set", "rooms.max_participants", "4")
    assert result.exit_code == 0, result.output
    assert target.read_text() == "[rooms]\nmax_participants = 4\n"
    assert not (tmp_path / "sfu.toml").exists()


def test_set_never_echoes_a_secret(config: Path) -> None:
    result = sfu("config", "set", "auth.admin_token", "s3cret-value")
    assert result.exit_code == 0
    assert "s3cret-value" not in result.output
    assert 'admin_token = "s3cret-value"' in config.read_text()
    assert sfu("config", "get", "auth.admin_token").stdout == "********\n"


def test_set_warns_when_env_overrides(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFU_SERVER__PORT", "6100")
    result = sfu("config", "set", "server.port", "8080")
    assert result.exit_code == 0
    assert "SFU_SERVER__PORT" in result.stderr


def test_unset_keeps_the_rest(config: Path) -> None:
    result = sfu("config", "unset", "server.port")
    assert result.exit_code == 0, result.output
    text = config.read_text()
    assert "port" not in text
    assert "# Loopback only for now." in text and "# keep this comment" in text
    assert 'host = "127.0.0.1"' in text and "max_rooms = 20  # a small box" in text
    assert json.loads(sfu("config", "get", "server.port", "--json").stdout)["source"] == "default"
    again = sfu("config", "unset", "server.port")
    assert again.exit_code == 0 and "not set" in again.stdout
    before = config.read_bytes()
    one_line_error(sfu("config", "unset", "server.nope"), 2)
    assert config.read_bytes() == before


# -- config: validate -------------------------------------------------------------------------


def test_validate(config: Path, tmp_path: Path) -> None:
    result = sfu("config", "validate")
    assert result.exit_code == 0 and "valid" in result.stdout
    assert sfu("config", "validate", str(config)).exit_code == 0

    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 0\n[rooms]\nmax_rooms = 5\ntypo = 1\n")
    line = one_line_error(sfu("config", "validate", str(bad)), 2)
    assert "server.port" in line and "rooms.typo" in line

    broken = tmp_path / "broken.toml"
    broken.write_text("[server\nport = 1\n")
    line = one_line_error(sfu("config", "validate", str(broken)), 2)
    assert "not valid TOML" in line

    line = one_line_error(sfu("config", "validate", str(tmp_path / "none.toml")), 2)
    assert "not found" in line


def test_validate_judges_the_file_not_the_environment(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SFU_SERVER__PORT", "0")
    assert sfu("config", "validate").exit_code == 0


def test_config_doc_check(tmp_path: Path) -> None:
    target = tmp_path / "configuration.md"
    assert "out of date" in one_line_error(
        sfu("config", "doc", "--output", str(target), "--check"), 1
    )
    assert sfu("config", "doc", "--output", str(target)).exit_code == 0
    assert sfu("config", "doc", "--output", str(target), "--check").exit_code == 0
    assert sfu("config", "doc").stdout == target.read_text()


# -- the admin commands -----------------------------------------------------------------------


def test_admin_commands_report_an_unreachable_server() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for command in (
        ["rooms", "list"],
        ["rooms", "show", "r1"],
        ["rooms", "close", "r1"],
        ["settings", "show"],
        ["settings", "set", "rooms.max_rooms", "3"],
    ):
        line = one_line_error(sfu(*command, "--server", url, "--token", TOKEN), 1)
        assert f"cannot reach the server at {url}" in line


def test_admin_commands_refuse_a_non_http_url() -> None:
    line = one_line_error(sfu("rooms", "list", "--server", "ftp://127.0.0.1"), 2)
    assert "http://" in line


def _wait_for_health(proc: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"server exited early: {proc.stdout.read() if proc.stdout else ''}"
            )
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not answer /health")


@pytest.fixture(scope="module")
def live() -> Iterator[str]:
    """A real `sfu serve` process with an admin token, on a free loopback port."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SFU_")}
    env.update(SFU_AUTH__ADMIN_TOKEN=TOKEN, SFU_SERVER__SHUTDOWN_GRACE_SECONDS="0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sfu", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_health(proc, url)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def create_room(url: str, room: str, mode: str = "p2p", name: str | None = None) -> None:
    body = {"roomId": room, "mode": mode, **({"name": name} if name else {})}
    request = urllib.request.Request(
        url + "/api/rooms",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


def test_admin_token_errors(live: str, monkeypatch: pytest.MonkeyPatch) -> None:
    line = one_line_error(sfu("rooms", "list", "--server", live), 1)
    assert "admin token is needed" in line
    line = one_line_error(sfu("settings", "show", "--server", live, "--token", "wrong"), 1)
    assert "refused the token" in line
    # The environment names the server and the token.
    monkeypatch.setenv("SFU_SERVER_URL", live)
    monkeypatch.setenv("SFU_ADMIN_TOKEN", TOKEN)
    result = sfu("rooms", "list", "--json")
    assert result.exit_code == 0, result.output
    assert "rooms" in json.loads(result.stdout)


def test_settings_show_and_set(live: str) -> None:
    auth = ["--server", live, "--token", TOKEN]
    result = sfu("settings", "show", "--json", *auth)
    assert result.exit_code == 0, result.output
    settings = json.loads(result.stdout)["settings"]
    assert settings["server.port"] == int(live.rsplit(":", 1)[1])
    assert settings["auth.admin_token"] == "********" and TOKEN not in result.stdout
    table = sfu("settings", "show", *auth)
    assert table.exit_code == 0 and "rooms.chat_history" in table.stdout

    result = sfu("settings", "set", "rooms.chat_history", "7", *auth)
    assert result.exit_code == 0, result.output
    assert "rooms.chat_history = 7 applied" in result.stdout
    shown = json.loads(sfu("settings", "show", "--json", *auth).stdout)["settings"]
    assert shown["rooms.chat_history"] == 7

    result = sfu("settings", "set", "server.host", "127.0.0.1", *auth)
    assert result.exit_code == 0 and "restart" in result.stdout

    result = sfu("settings", "set", "server.log_level", "DEBUG", "--json", *auth)
    assert json.loads(result.stdout)["applied"] == ["server.log_level"]

    line = one_line_error(sfu("settings", "set", "rooms.chat_history", "-5", *auth), 2)
    assert "rooms.chat_history" in line and "refused" in line
    line = one_line_error(sfu("settings", "set", "rooms.nope", "1", *auth), 2)
    assert "rooms.nope" in line
    assert (
        json.loads(sfu("settings", "show", "--json", *auth).stdout)["settings"][
            "rooms.chat_history"
        ]
        == 7
    )  # a refused change changed nothing


async def test_rooms_list_show_close(live: str) -> None:
    auth = ["--server", live, "--token", TOKEN]
    create_room(live, "cli-empty", "sfu", name="Weekly design review")
    alice = await Client(live).connect()
    try:
        await alice.join("cli-room", "alice", "Alice", media={"audio": True})

        result = sfu("rooms", "list", "--json", *auth)
        assert result.exit_code == 0, result.output
        rooms = {r["roomId"]: r for r in json.loads(result.stdout)["rooms"]}
        assert rooms["cli-room"]["participants"] == 1 and rooms["cli-room"]["mode"] == "p2p"
        assert rooms["cli-empty"]["mode"] == "sfu"
        assert rooms["cli-empty"]["roomName"] == "Weekly design review"
        assert rooms["cli-room"]["roomName"] is None
        table = sfu("rooms", "list", *auth).stdout
        row = next(line for line in table.splitlines() if "cli-room" in line)
        assert "p2p" in row and "UTC" in row
        assert "Weekly design" in table  # the name column (rich may wrap it)
        shown = sfu("rooms", "show", "cli-empty", *auth).stdout
        assert "room cli-empty (Weekly design review): sfu" in shown

        result = sfu("rooms", "show", "cli-room", *auth)
        assert result.exit_code == 0, result.output
        assert "1 participant" in result.stdout
        row = next(line for line in result.stdout.splitlines() if "alice" in line)
        assert "Alice" in row and "on" in row
        shown = json.loads(sfu("rooms", "show", "cli-room", "--json", *auth).stdout)
        assert shown["participantList"][0]["userId"] == "alice"
        assert "media" not in shown  # a P2P room has no media router
        # Without the token the public view answers, without participants.
        public = sfu("rooms", "show", "cli-room", "--server", live)
        assert public.exit_code == 0 and "alice" not in public.stdout
        # An SFU room's view adds its media router's counters.
        result = sfu("rooms", "show", "cli-empty", *auth)
        assert result.exit_code == 0, result.output
        assert "media: 0 connection(s), 0 producer(s), 0 consumer(s)" in result.stdout
        assert "0 forwarding encodes" in result.stdout
        shown = json.loads(sfu("rooms", "show", "cli-empty", "--json", *auth).stdout)
        assert shown["media"]["consumerList"] == [] and shown["media"]["participants"] == 0

        result = sfu("rooms", "close", "cli-room", *auth)
        assert result.exit_code == 0, result.output
        assert "closed room cli-room" in result.stdout
        [notice] = await alice.wait_for("room-closed")
        assert notice["roomId"] == "cli-room"
        line = one_line_error(sfu("rooms", "show", "cli-room", *auth), 1)
        assert "no room 'cli-room'" in line
        line = one_line_error(sfu("rooms", "close", "cli-room", *auth), 1)
        assert "no room 'cli-room'" in line
        assert sfu("rooms", "close", "cli-empty", "--json", *auth).exit_code == 0
        assert sfu("rooms", "list", *auth).stdout == "no rooms\n"
    finally:
        await alice.close()


def test_room_ids_are_quoted_in_the_url(live: str) -> None:
    line = one_line_error(
        sfu("rooms", "show", "../settings", "--server", live, "--token", TOKEN), 1
    )
    assert "no room '../settings'" in line


# -- join tokens, kick, lock (#13) ------------------------------------------------------------
SECRET = "cli-token-secret-0123456789abcdef0123"


async def test_token_create_output_joins(make_server, monkeypatch: pytest.MonkeyPatch) -> None:
    running = await make_server(auth={"token_secret": SECRET})
    monkeypatch.setenv("SFU_AUTH__TOKEN_SECRET", SECRET)
    result = sfu(
        "token", "create", "--room", "cli-r", "--identity", "alice", "--name", "Alice",
        "--grant", "publish,record", "--ttl", "1h", "--json", "--url", running.url,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    made = json.loads(result.stdout)
    assert made["url"] == f"{running.url}/room/cli-r?token={made['token']}"
    plain = sfu("token", "create", "--room", "cli-r", "--identity", "bob", "--deny", "chat")
    token_line, url_line = plain.stdout.splitlines()
    assert url_line.startswith("http://127.0.0.1:5000/room/cli-r?token=" + token_line)
    alice, bob = await Client(running.url).connect(), await Client(running.url).connect()
    try:
        ack = await alice.join("cli-r", "ignored", "Ignored", token=made["token"])
        assert ack["userId"] == "alice" and ack["userName"] == "Alice"
        ack = await bob.join("cli-r", "x", token=token_line)
        assert ack["userId"] == "bob" and ack["grants"]["chat"] is False
    finally:
        await alice.close()
        await bob.close()


def test_token_create_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    base = ["token", "create", "--room", "r", "--identity", "a"]
    assert "auth.token_secret is unset" in one_line_error(sfu(*base), 2)
    monkeypatch.setenv("SFU_AUTH__TOKEN_SECRET", SECRET)
    assert "unknown grant 'fly'" in one_line_error(sfu(*base, "--grant", "fly"), 2)
    assert sfu(*base, "--ttl", "soon").exit_code == 2
    made = sfu(*base, "--create-room", "--mode", "sfu", "--password", "pw", "--json")
    token = json.loads(made.stdout)["token"]
    import jwt

    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["grants"]["createRoom"] is True
    assert claims["roomSettings"] == {"mode": "sfu", "access": "password", "password": "pw"}


async def test_rooms_kick_and_lock(live: str) -> None:
    auth = ["--server", live, "--token", TOKEN]
    alice, bob = await Client(live).connect(), await Client(live).connect()
    try:
        await alice.join("cli-kick", "alice", "Alice")
        await bob.join("cli-kick", "bob", "Bob")
        result = sfu("rooms", "lock", "cli-kick", *auth)
        assert result.exit_code == 0 and "locked room cli-kick" in result.stdout
        assert (await alice.wait_for("room-locked"))[0]["locked"] is True
        result = sfu("rooms", "kick", "cli-kick", "bob", "--reason", "test", *auth)
        assert result.exit_code == 0, result.output
        assert "removed bob from cli-kick" in result.stdout
        [removed] = await bob.wait_for("removed")
        assert removed["reason"] == "test"
        line = one_line_error(sfu("rooms", "kick", "cli-kick", "bob", *auth), 1)
        assert "no participant 'bob'" in line
        result = sfu("rooms", "lock", "cli-kick", "--unlock", "--json", *auth)
        assert json.loads(result.stdout)["locked"] is False
    finally:
        await alice.close()
        await bob.close()
