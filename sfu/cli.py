"""The ``sfu`` command: serve, edit the settings file, and administer a running server.

Exit codes: 0 success; 1 a runtime failure (server unreachable, refused token, no such room);
2 bad input (usage, an invalid setting or file, a value the server refused). Every failure is
one line on stderr starting with ``sfu:``.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sfu import __version__
from sfu.config_file import (
    ConfigFileError,
    effective,
    env_name,
    is_secret,
    parse_value,
    read_document,
    render_configuration_doc,
    resolve_path,
    serve_path,
    set_value,
    split_key,
    unset_value,
    validate_document,
    value_for,
    write_document,
)
from sfu.settings import SettingsError, load_settings

DEFAULT_SERVER_URL = "http://127.0.0.1:5000"
# Lets a VALUE start with "-" (e.g. -1) without being taken for an option.
_VALUE_ARGS = {"ignore_unknown_options": True}

app = typer.Typer(
    name="sfu",
    help="A meeting server: P2P signaling, an SFU and server recordings.",
    epilog="\b\nExamples:\n"
    "  sfu serve --port 8080\n"
    "  sfu config set rooms.max_participants 8\n"
    "  sfu rooms list --token $SFU_ADMIN_TOKEN\n\n"
    "Settings reference: docs/configuration.md. Commands: docs/cli.md.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(
    help="Read and edit the TOML settings file (comments and layout are kept).",
    epilog="\b\nThe file: --config FILE, else $SFU_CONFIG, else ./sfu.toml.\n"
    "Examples:\n"
    "  sfu config show\n"
    "  sfu config set server.port 8080\n"
    "  sfu config set server.cors_origins '[\"https://meet.example.org\"]'\n"
    "  sfu config validate /etc/sfu/sfu.toml",
    no_args_is_help=True,
)
settings_app = typer.Typer(
    help="Show or change the settings of a running server (admin token needed).",
    epilog="\b\nExamples:\n"
    "  sfu settings show --server http://127.0.0.1:5000 --token TOKEN\n"
    "  SFU_ADMIN_TOKEN=TOKEN sfu settings set rooms.max_participants 4",
    no_args_is_help=True,
)
rooms_app = typer.Typer(
    help="List, inspect and close the rooms of a running server (admin token needed).",
    epilog="\b\nExamples:\n"
    "  sfu rooms list --token TOKEN\n"
    "  sfu rooms show standup --token TOKEN --json\n"
    "  sfu rooms close standup --token TOKEN",
    no_args_is_help=True,
)
record_app = typer.Typer(
    help="Start and stop the server recording of an SFU room (admin token needed).",
    epilog="\b\nExamples:\n"
    "  sfu record start standup --token TOKEN\n"
    "  sfu record start standup --layout speaker --token TOKEN\n"
    "  sfu record start standup --layout audio --token TOKEN\n"
    "  sfu record stop standup --token TOKEN",
    no_args_is_help=True,
)
token_app = typer.Typer(
    help="Mint signed join tokens (JWT, HS256 with auth.token_secret) for rooms.",
    epilog="\b\nReads the same settings as 'sfu serve' (--config, SFU_AUTH__TOKEN_SECRET).\n"
    "Examples:\n"
    "  sfu token create --room standup --identity alice --name Alice --ttl 1h\n"
    "  sfu token create --room standup --identity bob --grant record,moderate --json\n"
    "  sfu token create --room new1 --identity carol --create-room --mode sfu --password s3cret",
    no_args_is_help=True,
)
recordings_app = typer.Typer(
    help="List, inspect, download and delete the recordings of a running server.",
    epilog="\b\nThe token is the admin token (a participant's room token may list and\n"
    "download that room's recordings).\n"
    "Examples:\n"
    "  sfu recordings list --token TOKEN\n"
    "  sfu recordings download standup-20260301T120000Z-k3J9qXb2Lm -o standup.mp4 --token TOKEN\n"
    "  sfu recordings prune --token TOKEN",
    no_args_is_help=True,
)
app.add_typer(config_app, name="config")
app.add_typer(settings_app, name="settings")
app.add_typer(rooms_app, name="rooms")
app.add_typer(record_app, name="record")
app.add_typer(recordings_app, name="recordings")
app.add_typer(token_app, name="token")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Settings file. Default: $SFU_CONFIG, else ./sfu.toml.",
        dir_okay=False,
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ServerOpt = Annotated[
    str,
    typer.Option(
        "--server",
        "-s",
        envvar="SFU_SERVER_URL",
        help="Base URL of the running server.",
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        "-t",
        envvar="SFU_ADMIN_TOKEN",
        help="The server's auth.admin_token, sent as a Bearer token.",
        show_default=False,
    ),
]
KeyArg = Annotated[str, typer.Argument(help="Dotted key, e.g. server.port.", show_default=False)]
ValueArg = Annotated[
    str,
    typer.Argument(help='A TOML value (8080, true, ["a", "b"]) or plain text.', show_default=False),
]


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, then exit: the contract of every command."""
    typer.echo(f"sfu: {message}", err=True)
    raise typer.Exit(code)


def console() -> Console:
    # Made per call so COLUMNS and redirections in effect now are honoured.
    return Console(highlight=False)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def show_value(value: Any, unset: str = "unset") -> str:
    """Strings as they are; everything else as JSON (true, [..])."""
    if value is None:
        return unset
    return value if isinstance(value, str) else json.dumps(value)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"sfu {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", callback=version_callback, is_eager=True, help="Print the version."
        ),
    ] = None,
) -> None:
    """A meeting server: P2P signaling, an SFU and server recordings."""


# -- serve ------------------------------------------------------------------------------------


@app.command(
    epilog="\b\nExamples:\n"
    "  sfu serve\n"
    "  sfu serve --host 0.0.0.0 --port 8080 --log-level debug\n"
    "  sfu serve --config /etc/sfu/sfu.toml\n"
    "  sfu serve --redis-url redis://10.0.0.5:6379/0 --node-id node-a\n"
    "  sfu serve --workers auto --redis-url redis://127.0.0.1:6379/0\n"
    "  SFU_ROOMS__MAX_PARTICIPANTS=4 sfu serve"
)
def serve(
    host: Annotated[
        str | None, typer.Option(help="Listen address (server.host).", show_default=False)
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Listen port (server.port).", show_default=False)
    ] = None,
    config: ConfigOpt = None,
    log_level: Annotated[
        str | None,
        typer.Option(help="DEBUG, INFO, WARNING or ERROR (server.log_level).", show_default=False),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(help="Redis shared by several nodes (server.redis_url).", show_default=False),
    ] = None,
    node_id: Annotated[
        str | None,
        typer.Option(help="This node's name in the cluster (server.node_id).", show_default=False),
    ] = None,
    workers: Annotated[
        str,
        typer.Option(
            help="Server processes sharing the port: a number, or auto (one per core). "
            "More than one needs --redis-url.",
        ),
    ] = "1",
) -> None:
    """Run the server until SIGINT or SIGTERM.

    Settings come from the defaults, the settings file, the environment and these flags, each
    overriding the one before (see docs/configuration.md).
    """
    flags: dict[str, Any] = {}
    if host is not None:
        flags["host"] = host
    if port is not None:
        flags["port"] = port
    if log_level is not None:
        flags["log_level"] = log_level.upper()
    if redis_url is not None:
        flags["redis_url"] = redis_url
    if node_id is not None:
        flags["node_id"] = node_id
    try:
        settings = load_settings(serve_path(config), {"server": flags} if flags else None)
    except SettingsError as exc:
        fail(str(exc), 2)
    from sfu.server.workers import run_workers, worker_count

    try:
        count = worker_count(workers)
    except ValueError:
        fail(f"--workers must be a number from 1 to 256 or auto, not {workers!r}", 2)
    if count > 1 and settings.server.redis_url is None:
        fail(
            f"--workers {count} needs server.redis_url (--redis-url): "
            "the workers share their rooms through Redis",
            2,
        )
    from sfu.server import run  # the server's imports are heavy; config commands skip them

    try:
        code = run(settings) if count == 1 else run_workers(settings, count)
    except OSError as exc:  # the port is taken, the address is not ours, ...
        where = f"{settings.server.host}:{settings.server.port}"
        fail(f"cannot serve on {where}: {exc.strerror or exc}", 1)
    raise typer.Exit(code)


# -- config -----------------------------------------------------------------------------------


def _guard(func: Any, *args: Any) -> Any:
    """Run a config step, turning a settings or file problem into one line and exit 2."""
    try:
        return func(*args)
    except (SettingsError, ConfigFileError) as exc:
        fail(str(exc), 2)


@config_app.command(
    "path", epilog='\b\nExamples:\n  sfu config path\n  $EDITOR "$(sfu config path)"'
)
def config_path(config: ConfigOpt = None) -> None:
    """Print the path of the settings file the config commands use."""
    path = resolve_path(config)
    typer.echo(str(path.absolute()))
    if not path.exists():
        typer.echo("(does not exist yet; 'sfu config set' creates it)", err=True)


@config_app.command("show", epilog="\b\nExamples:\n  sfu config show\n  sfu config show --json")
def config_show(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Print every setting with its effective value and where it comes from.

    The source is the default, the file, or an environment variable (named).
    """
    path = serve_path(config)
    entries = _guard(effective, path)
    if as_json:
        print_json(
            {e.key: {"value": e.value, "source": e.source, "origin": e.origin} for e in entries}
        )
        return
    table = Table(title=f"Settings ({path if path else 'no settings file'})", title_justify="left")
    table.add_column("key", no_wrap=True)
    table.add_column("value")
    table.add_column("source")
    for e in entries:
        style = "dim" if e.source == "default" else ""
        table.add_row(Text(e.key), Text(show_value(e.value), style=style), Text(e.label()))
    console().print(table)


@config_app.command(
    "get", epilog="\b\nExamples:\n  sfu config get server.port\n  sfu config get ice.servers --json"
)
def config_get(key: KeyArg, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Print the effective value of one setting (secrets are masked)."""
    _guard(split_key, key)
    entry = next(e for e in _guard(effective, serve_path(config)) if e.key == key)
    if as_json:
        print_json(
            {"key": key, "value": entry.value, "source": entry.source, "origin": entry.origin}
        )
    else:
        typer.echo(show_value(entry.value, unset=""))  # unset: an empty line


@config_app.command(
    "set",
    context_settings=_VALUE_ARGS,
    epilog="\b\nExamples:\n"
    "  sfu config set server.port 8080\n"
    "  sfu config set server.host 0.0.0.0\n"
    "  sfu config set recording.auto_start true\n"
    "  sfu config set ice.servers '[{urls = [\"stun:stun.example.org:3478\"]}]'",
)
def config_set(key: KeyArg, value: ValueArg, config: ConfigOpt = None) -> None:
    """Set a key in the settings file after checking the value; the file is created if needed.

    A bad key or value changes nothing.
    """
    path = resolve_path(config)
    doc = _guard(read_document, path)
    checked = _guard(value_for, key, value)
    _guard(set_value, doc, key, checked)
    try:
        write_document(path, doc)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}", 1)
    shown = "********" if is_secret(key) else show_value(checked)
    typer.echo(f"{key} = {shown} in {path}")
    _warn_if_env_overrides(key)


@config_app.command("unset", epilog="\b\nExample:\n  sfu config unset server.port")
def config_unset(key: KeyArg, config: ConfigOpt = None) -> None:
    """Remove a key from the settings file, so its default (or the environment) applies."""
    path = resolve_path(config)
    _guard(split_key, key)
    doc = _guard(read_document, path)
    if not unset_value(doc, key):
        typer.echo(f"{key} is not set in {path}; nothing to do")
        return
    try:
        write_document(path, doc)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}", 1)
    typer.echo(f"{key} removed from {path}")
    _warn_if_env_overrides(key)


def _warn_if_env_overrides(key: str) -> None:
    name = env_name(key)
    if any(n.upper() == name for n in os.environ):
        typer.echo(f"note: {name} is set and overrides the file for {key}", err=True)


@config_app.command(
    "validate",
    epilog="\b\nExamples:\n  sfu config validate\n  sfu config validate /etc/sfu/sfu.toml",
)
def config_validate(
    file: Annotated[
        Path | None,
        typer.Argument(help="File to check. Default: the settings file.", show_default=False),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Check a settings file against the settings model; exit 0 if valid, else 2.

    Only the file is judged, not the environment.
    """
    path = file or resolve_path(config)
    doc = _guard(lambda: read_document(path, missing_ok=False))
    _guard(validate_document, doc, path)
    typer.echo(f"{path}: valid")


@config_app.command("doc", hidden=True)
def config_doc(
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    check: Annotated[bool, typer.Option(help="Exit 1 if OUTPUT is out of date.")] = False,
) -> None:
    """Generate docs/configuration.md from the settings model (scripts/gen-config-doc)."""
    text = render_configuration_doc()
    if output is None:
        typer.echo(text, nl=False)
    elif check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            fail(f"{output} is out of date: run scripts/gen-config-doc", 1)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")


# -- the admin API of a running server --------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would carry the admin token to wherever it points: refuse instead.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# No proxies either: the token goes straight to the server named on the command line.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def _require_http(server: str) -> None:
    if not server.startswith(("http://", "https://")):
        fail(f"--server must be an http:// or https:// URL (got {server!r})", 2)


def _open(
    server: str, token: str | None, method: str, path: str, body: Any = None, *, what: str = ""
) -> Any:
    """Send one API request and return the open response; any failure is one line and exit."""
    _require_http(server)
    url = server.rstrip("/") + path
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        return _opener.open(request, timeout=10)
    except urllib.error.HTTPError as exc:
        _http_error(exc, server, token, what)
    except urllib.error.URLError as exc:
        reason = getattr(exc.reason, "strerror", None) or exc.reason
        fail(f"cannot reach the server at {server}: {reason}")
    except http.client.InvalidURL as exc:
        fail(f"--server {server!r} is not a valid URL: {exc}", 2)
    except (TimeoutError, ConnectionError) as exc:
        fail(f"cannot reach the server at {server}: {exc or type(exc).__name__}")
    except http.client.HTTPException as exc:
        fail(f"{server} did not answer like an HTTP server: {type(exc).__name__} {exc}")


def call(
    server: str, token: str | None, method: str, path: str, body: Any = None, *, what: str = ""
) -> Any:
    """One admin API request; any failure becomes one line and a non-zero exit."""
    try:
        with _open(server, token, method, path, body, what=what) as response:
            raw = response.read()
            status = response.status
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        fail(f"the connection to {server} broke: {exc or type(exc).__name__}")
    if status == 204:  # No Content: a deletion
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        fail(f"{server} did not answer JSON for {path}; is it an sfu server?")


def _http_error(exc: urllib.error.HTTPError, server: str, token: str | None, what: str) -> NoReturn:
    try:
        body = json.loads(exc.read())
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    code = body.get("error") if isinstance(body, dict) else None
    if exc.code == 401:
        if not token:
            fail("an admin token is needed: pass --token or set SFU_ADMIN_TOKEN")
        fail(f"the server at {server} refused the token (401: {message or exc.reason})")
    if exc.code == 404 and (code == "unknown_room" or (isinstance(body, dict) and what)):
        fail(f"no {what or 'such room'} on {server}")
    if exc.code == 404:
        fail(f"{server} has no {exc.url.removeprefix(server.rstrip('/'))}; is it an sfu server?")
    if exc.code == 400:
        fail(f"the server refused the request: {message or exc.reason}", 2)
    fail(f"the server answered {exc.code} {exc.reason}" + (f": {message}" if message else ""))


def _room_path(room: str) -> str:
    return "/api/rooms/" + urllib.parse.quote(room, safe="")


def _when(timestamp: Any) -> str:
    if not isinstance(timestamp, int | float):
        return "" if timestamp is None else str(timestamp)
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@settings_app.command(
    "show",
    epilog="\b\nExamples:\n  sfu settings show --token TOKEN\n"
    "  sfu settings show --server http://127.0.0.1:8080 --token TOKEN --json",
)
def settings_show(
    server: ServerOpt = DEFAULT_SERVER_URL, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Print the running server's effective settings (GET /api/settings)."""
    answer = call(server, token, "GET", "/api/settings")
    if as_json:
        print_json(answer)
        return
    sources = answer.get("sources") or {}  # optional: {key: "default" | "file" | ...}
    table = Table(title=f"Settings of {server}", title_justify="left")
    table.add_column("key", no_wrap=True)
    table.add_column("value")
    if sources:
        table.add_column("source")
    for key, value in answer.get("settings", {}).items():
        cells = [Text(key), Text(show_value(value))]
        if sources:
            cells.append(Text(show_value(sources.get(key), unset="")))
        table.add_row(*cells)
    console().print(table)


@settings_app.command(
    "set",
    context_settings=_VALUE_ARGS,
    epilog="\b\nExamples:\n"
    "  sfu settings set rooms.max_participants 4 --token TOKEN\n"
    "  sfu settings set server.log_level DEBUG --token TOKEN",
)
def settings_set(
    key: KeyArg,
    value: ValueArg,
    server: ServerOpt = DEFAULT_SERVER_URL,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change one setting of the running server (PATCH /api/settings).

    The change lasts until the server stops; use 'sfu config set' to keep it. Keys read only
    at start-up are stored and reported as needing a restart.
    """
    try:
        checked = value_for(key, value)
    except (SettingsError, ConfigFileError):
        checked = parse_value(value)  # the server has the last word (it may be newer)
    answer = call(server, token, "PATCH", "/api/settings", {"changes": {key: checked}})
    if as_json:
        print_json(answer)
        return
    shown = show_value(answer.get("settings", {}).get(key, checked))
    if key in answer.get("restart_required", []):
        typer.echo(f"{key} = {shown} stored; takes effect after a restart")
    else:
        typer.echo(f"{key} = {shown} applied")


@rooms_app.command(
    "list",
    epilog="\b\nExamples:\n  sfu rooms list --token TOKEN\n  sfu rooms list --token TOKEN --json",
)
def rooms_list(
    server: ServerOpt = DEFAULT_SERVER_URL, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """List the rooms of the running server (GET /api/rooms)."""
    answer = call(server, token, "GET", "/api/rooms")
    if as_json:
        print_json(answer)
        return
    rooms = answer.get("rooms", [])
    if not rooms:
        typer.echo("no rooms")
        return
    table = Table(title=f"Rooms on {server}", title_justify="left")
    clustered = any("node" in room for room in rooms)  # several nodes: where each runs
    columns: tuple[str, ...] = ("room", "name", "mode", "participants", "created")
    columns += ("node",) if clustered else ()
    for column in columns:
        table.add_column(column, no_wrap=column == "room")
    for room in rooms:
        cells = [
            str(room.get("roomId")),
            str(room.get("roomName") or ""),  # a display name; blank when unnamed
            str(room.get("mode")),
            str(room.get("participants")),
            _when(room.get("createdAt")),
        ]
        if clustered:
            cells.append(str(room.get("node") or "(released)"))
        table.add_row(*(Text(c) for c in cells))
    console().print(table)


@rooms_app.command(
    "show",
    epilog="\b\nExamples:\n  sfu rooms show standup\n  sfu rooms show standup --token TOKEN --json",
)
def rooms_show(
    room: Annotated[str, typer.Argument(help="Room id.", show_default=False)],
    server: ServerOpt = DEFAULT_SERVER_URL,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one room and, with the admin token, its participants (GET /api/rooms/ROOM)."""
    answer = call(server, token, "GET", _room_path(room), what=f"room {room!r}")
    if as_json:
        print_json(answer)
        return
    out = console()
    out.print(
        Text(
            f"room {answer.get('roomId')}"
            + (f" ({answer['roomName']})" if answer.get("roomName") else "")
            + f": {answer.get('mode')}, "
            f"{answer.get('participants')} participant(s)"
            + (f", created {_when(answer['createdAt'])}" if "createdAt" in answer else "")
        )
    )
    people = answer.get("participantList")
    if people is None:
        out.print(Text("(participants are listed with the admin token)", style="dim"))
        return
    table = Table()
    for column in ("user", "name", "audio", "video", "screen"):
        table.add_column(column)
    for p in people:
        media = p.get("media") or {}
        flags = [Text("on" if media.get(m) else "off") for m in ("audio", "video", "screen")]
        table.add_row(Text(str(p.get("userId"))), Text(str(p.get("userName"))), *flags)
    if people:
        out.print(table)
    media = answer.get("media")
    if media:
        out.print(
            Text(
                f"media: {media.get('connections')} connection(s), "
                f"{len(media.get('producers') or [])} producer(s), "
                f"{media.get('consumers')} consumer(s), "
                f"{media.get('forwardedFrames')} frames forwarded, "
                f"{media.get('droppedFrames')} dropped, "
                f"{media.get('forwardingEncodes')} forwarding encodes"
            )
        )
        _print_layers(out, media)


def _print_layers(out: Any, media: dict[str, Any]) -> None:
    """Per simulcast consumer: the layer forwarded, the one chosen, and why (#17)."""
    rids = {
        (p.get("userId"), p.get("source")): [x.get("rid") for x in p.get("layers") or []]
        for p in media.get("producers") or []
        if p.get("layers")
    }
    rows = [c for c in media.get("consumerList") or [] if "layer" in c or c.get("paused")]
    if not rows:
        return
    table = Table(title="video layers")
    for column in ("subscriber", "publisher", "source", "layer", "target", "reason"):
        table.add_column(column)

    def rid(c: dict[str, Any], key: str) -> str:
        names = rids.get((c.get("userId"), c.get("source"))) or []
        index = c.get(key)
        if c.get("paused"):
            return "none"
        return str(names[index]) if isinstance(index, int) and index < len(names) else "-"

    for c in rows:
        table.add_row(
            *(Text(str(c.get(k))) for k in ("subscriber", "userId", "source")),
            Text(rid(c, "layer")),
            Text(rid(c, "targetLayer")),
            Text("hidden" if c.get("paused") else str(c.get("layerReason", "-"))),
        )
    out.print(table)


@rooms_app.command("close", epilog="\b\nExample:\n  sfu rooms close standup --token TOKEN")
def rooms_close(
    room: Annotated[str, typer.Argument(help="Room id.", show_default=False)],
    server: ServerOpt = DEFAULT_SERVER_URL,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Close a room: its participants are told and disconnected (DELETE /api/rooms/ROOM)."""
    answer = call(server, token, "DELETE", _room_path(room), what=f"room {room!r}")
    if as_json:
        print_json(answer)
    else:
        typer.echo(f"closed room {room}")


@rooms_app.command(
    "kick",
    epilog="\b\nExamples:\n  sfu rooms kick standup mallory --token TOKEN\n"
    "  sfu rooms kick standup mallory --reason 'off topic' --token TOKEN",
)
def rooms_kick(
    room: Annotated[str, typer.Argument(help="Room id.", show_default=False)],
    user: Annotated[str, typer.Argument(help="The participant's user id.", show_default=False)],
    reason: Annotated[
        str | None, typer.Option(help="Shown to the participant.", show_default=False)
    ] = None,
    server: ServerOpt = DEFAULT_SERVER_URL,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove a participant; it cannot rejoin for rooms.removal_ban_seconds (DELETE
    /api/rooms/ROOM/participants/USER)."""
    path = _room_path(room) + "/participants/" + urllib.parse.quote(user, safe="")
    body = {"reason": reason} if reason else None
    answer = call(server, token, "DELETE", path, body, what=f"participant {user!r} in {room!r}")
    if as_json:
        print_json(answer)
    else:
        typer.echo(f"removed {user} from {room} (banned for {_seconds(answer.get('banSeconds'))})")


@rooms_app.command(
    "lock",
    epilog="\b\nExamples:\n  sfu rooms lock standup --token TOKEN\n"
    "  sfu rooms lock standup --unlock --token TOKEN",
)
def rooms_lock(
    room: Annotated[str, typer.Argument(help="Room id.", show_default=False)],
    unlock: Annotated[bool, typer.Option("--unlock", help="Unlock instead.")] = False,
    server: ServerOpt = DEFAULT_SERVER_URL,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Lock a room (newcomers wait in the lobby for a moderator) or unlock it (POST
    /api/rooms/ROOM/lock); unlocking lets in whoever waits."""
    answer = call(
        server,
        token,
        "POST",
        _room_path(room) + "/lock",
        {"locked": not unlock},
        what=f"room {room!r}",
    )
    if as_json:
        print_json(answer)
    else:
        typer.echo(f"{'unlocked' if unlock else 'locked'} room {room}")


# -- join tokens ------------------------------------------------------------------------------


def _duration(value: str) -> float:
    """``90``, ``90s``, ``15m``, ``1h``, ``2d`` as seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = value.strip().lower()
    scale = units.get(text[-1:], None)
    number = text[:-1] if scale else text
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a duration like 90s, 15m, 1h or 2d") from None
    if not 0 < seconds <= 366 * 86400:
        raise typer.BadParameter("the lifetime must be between 1 s and a year")
    return seconds


def _names(values: list[str] | None) -> list[str]:
    return [n.strip() for v in values or [] for n in v.split(",") if n.strip()]


@token_app.command(
    "create",
    epilog="\b\nGrants: join, publish (or publish:audio, publish:video, publish:screen),\n"
    "subscribe, chat, record, moderate, createRoom. Without --grant/--deny a token has\n"
    "join, publish, subscribe and chat; --grant adds, --deny takes away.\n"
    "Examples:\n"
    "  sfu token create --room standup --identity alice --name Alice \\\n"
    "      --grant publish,record --ttl 1h\n"
    "  sfu token create --room standup --identity viewer1 --deny publish --json\n"
    "  sfu token create --room standup --identity host --grant moderate,createRoom \\\n"
    "      --create-room --mode sfu --password s3cret",
)
def token_create(
    room: Annotated[str, typer.Option(help="The room the token is for.", show_default=False)],
    identity: Annotated[
        str, typer.Option(help="The participant's user id (the sub claim).", show_default=False)
    ],
    name: Annotated[
        str | None, typer.Option(help="Display name in the meeting.", show_default=False)
    ] = None,
    grant: Annotated[
        list[str] | None,
        typer.Option(help="Grants to add (comma-separated or repeated).", show_default=False),
    ] = None,
    deny: Annotated[
        list[str] | None,
        typer.Option(help="Grants to take away (comma-separated or repeated).", show_default=False),
    ] = None,
    ttl: Annotated[str, typer.Option(help="Lifetime: 90s, 15m, 1h, 2d.")] = "1h",
    create_room: Annotated[
        bool,
        typer.Option(
            "--create-room", help="Let the token create the room (createRoom), with these settings."
        ),
    ] = False,
    mode: Annotated[
        str | None, typer.Option(help="p2p or sfu, for the room it creates.", show_default=False)
    ] = None,
    password: Annotated[
        str | None, typer.Option(help="The password of the room it creates.", show_default=False)
    ] = None,
    max_participants: Annotated[
        int | None, typer.Option(help="The cap of the room it creates.", show_default=False)
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            help="The server's public base URL for the join link. Default: "
            "http://server.host:server.port.",
            show_default=False,
        ),
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a signed join token and a ready join URL (ROOM?token=...)."""
    from sfu.access import grants as grant_names
    from sfu.access import tokens

    try:
        settings = load_settings(serve_path(config))
    except SettingsError as exc:
        fail(str(exc), 2)
    if settings.auth.token_secret is None:
        fail("auth.token_secret is unset: set it (SFU_AUTH__TOKEN_SECRET or the settings file)", 2)
    if mode not in (None, "p2p", "sfu"):
        fail("--mode must be p2p or sfu", 2)
    try:
        given = grant_names.DEFAULT.changed(_names(grant), True).changed(_names(deny), False)
    except ValueError as exc:
        fail(str(exc), 2)
    room_settings: dict[str, Any] = {}
    if mode or password or max_participants or create_room:
        given = given.changed(["createRoom"], True)
        if mode:
            room_settings["mode"] = mode
        if password:
            room_settings["access"], room_settings["password"] = "password", password
        if max_participants:
            room_settings["maxParticipants"] = max_participants
    try:
        token = tokens.create(
            settings.auth,
            room=room,
            identity=identity,
            name=name,
            grants=given,
            ttl_seconds=_duration(ttl),
            room_settings=room_settings or None,
        )
    except ValueError as exc:
        fail(str(exc), 2)
    host = settings.server.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    base = (url or f"http://{host}:{settings.server.port}").rstrip("/")
    link = f"{base}/room/{urllib.parse.quote(room, safe='')}?token={token}"
    if as_json:
        print_json({"token": token, "url": link})
    else:
        typer.echo(token)
        typer.echo(link)


# -- recordings -------------------------------------------------------------------------------

RoomArg = Annotated[str, typer.Argument(help="Room id.", show_default=False)]
RecordingArg = Annotated[
    str, typer.Argument(help="Recording id (see 'sfu recordings list').", show_default=False)
]


def _recording_path(recording_id: str, suffix: str = "") -> str:
    return "/api/recordings/" + urllib.parse.quote(recording_id, safe="") + suffix


def _size(size: Any) -> str:
    if not isinstance(size, int | float):
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def _seconds(value: Any) -> str:
    return f"{value:.1f} s" if isinstance(value, int | float) else ""


@record_app.command(
    "start",
    epilog="\b\nExamples:\n  sfu record start standup --token TOKEN\n"
    "  sfu record start standup --layout speaker --token TOKEN --json\n"
    "  sfu record start standup --layout audio --token TOKEN",
)
def record_start(
    room: RoomArg,
    layout: Annotated[
        str | None,
        typer.Option(
            help="grid, speaker, or audio: the mixed audio only, in recording.audio_format "
            "(default: recording.layout).",
            show_default=False,
        ),
    ] = None,
    server: ServerOpt = DEFAULT_SERVER_URL,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start recording an SFU room (POST /api/rooms/ROOM/recording)."""
    if layout is not None and layout not in ("grid", "speaker", "audio"):
        fail(f"--layout must be grid, speaker or audio (got {layout!r})", 2)
    body = {"layout": layout} if layout else {}
    answer = call(
        server, token, "POST", _room_path(room) + "/recording", body, what=f"room {room!r}"
    )
    if as_json:
        print_json(answer)
    else:
        typer.echo(f"recording room {room}: {answer.get('recordingId')}")


@record_app.command("stop", epilog="\b\nExample:\n  sfu record stop standup --token TOKEN")
def record_stop(
    room: RoomArg,
    server: ServerOpt = DEFAULT_SERVER_URL,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop a room's recording; returns once the file is complete."""
    answer = call(server, token, "DELETE", _room_path(room) + "/recording", what=f"room {room!r}")
    if as_json:
        print_json(answer)
    else:
        typer.echo(
            f"stopped {answer.get('recordingId')} of room {room}: "
            f"{_seconds(answer.get('duration'))}, {_size(answer.get('size'))}"
        )


@recordings_app.command(
    "list",
    epilog="\b\nExamples:\n  sfu recordings list --token TOKEN\n"
    "  sfu recordings list --token TOKEN --json",
)
def recordings_list(
    server: ServerOpt = DEFAULT_SERVER_URL, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """List the recordings, newest first (GET /api/recordings)."""
    answer = call(server, token, "GET", "/api/recordings")
    if as_json:
        print_json(answer)
        return
    items = answer.get("recordings", [])
    if not items:
        typer.echo("no recordings")
        return
    table = Table(title=f"Recordings on {server}", title_justify="left")
    for column in ("id", "room", "state", "start", "duration", "size"):
        table.add_column(column, no_wrap=column == "id")
    for meta in items:
        table.add_row(
            Text(str(meta.get("id"))),
            Text(str(meta.get("room"))),
            Text(str(meta.get("state"))),
            Text(str(meta.get("start") or "")),
            Text(_seconds(meta.get("duration"))),
            Text(_size(meta.get("size"))),
        )
    console().print(table)


@recordings_app.command(
    "info",
    epilog="\b\nExample:\n  sfu recordings info standup-20260301T120000Z-k3J9qXb2Lm --token TOKEN",
)
def recordings_info(
    recording: RecordingArg,
    server: ServerOpt = DEFAULT_SERVER_URL,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one recording's metadata and participants (GET /api/recordings/ID)."""
    meta = call(server, token, "GET", _recording_path(recording), what=f"recording {recording!r}")
    if as_json:
        print_json(meta)
        return
    out = console()
    for key in ("id", "room", "state", "start", "end", "layout", "file"):
        out.print(Text(f"{key}: {show_value(meta.get(key), unset='')}"))
    out.print(Text(f"duration: {_seconds(meta.get('duration'))}"))
    out.print(Text(f"size: {_size(meta.get('size'))}"))
    video = f"{meta.get('width')}x{meta.get('height')} @ {meta.get('fps')} fps"
    if meta.get("video_codec") is None:
        video = "none (audio only)"
    else:
        video = f"{meta.get('video_codec')} {video}"
    out.print(Text(f"video: {video}; audio: {meta.get('audio_codec')}"))
    if meta.get("error"):
        out.print(Text(f"error: {meta['error']}"))
    finalize = meta.get("finalize")
    if isinstance(finalize, dict):
        status = finalize.get("error") or (
            "timed out" if finalize.get("timed_out") else f"exit {finalize.get('exit_status')}"
        )
        out.print(Text(f"finalize: {status}"))
    people = meta.get("participants") or []
    if people:
        table = Table()
        for column in ("user", "name", "joined", "left"):
            table.add_column(column)
        for p in people:
            for session in p.get("sessions") or [{}]:
                table.add_row(
                    Text(str(p.get("user_id"))),
                    Text(str(p.get("name"))),
                    Text(str(session.get("joined") or "")),
                    Text(str(session.get("left") or "")),
                )
        out.print(table)


@recordings_app.command(
    "download",
    epilog="\b\nExamples:\n  sfu recordings download ID --token TOKEN\n"
    "  sfu recordings download ID -o meeting.mp4 --token TOKEN",
)
def recordings_download(
    recording: RecordingArg,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Where to save. Default: the recording's file name here."
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite OUTPUT if it exists.")] = False,
    server: ServerOpt = DEFAULT_SERVER_URL,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Download a recording's file (GET /api/recordings/ID/file), with a progress bar."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    what = f"recording {recording!r}"
    meta = call(server, token, "GET", _recording_path(recording), what=what)
    target = output or Path(str(meta.get("file") or f"{recording}.mp4")).name
    target = Path(target)
    if target.is_dir():
        target = target / str(meta.get("file") or f"{recording}.mp4")
    if target.exists() and not force:
        fail(f"{target} exists; pass --force to overwrite it", 2)
    partial = target.with_name(target.name + ".part")
    written = 0
    try:
        with (
            _open(server, token, "GET", _recording_path(recording, "/file"), what=what) as resp,
            partial.open("wb") as out,
            Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
                disable=as_json,
            ) as progress,
        ):
            header = resp.headers.get("Content-Length") or ""
            # ASCII digits only: "²".isdigit() is true and int() refuses it.
            length = int(header) if header.isascii() and header.isdigit() else None
            task = progress.add_task(str(target.name), total=length)
            while chunk := resp.read(256 * 1024):
                out.write(chunk)
                written += len(chunk)
                progress.update(task, advance=len(chunk))
        if length is not None and written != length:
            raise ConnectionError(f"got {written} of {length} bytes")
        partial.replace(target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, ConnectionError | TimeoutError):
            fail(f"the download from {server} broke: {exc or type(exc).__name__}")
        fail(f"cannot write {target}: {exc.strerror or exc}")
    except http.client.HTTPException as exc:
        partial.unlink(missing_ok=True)
        fail(f"the download from {server} broke: {type(exc).__name__} {exc}")
    if as_json:
        print_json({"id": recording, "file": str(target), "size": written})
    else:
        typer.echo(f"saved {recording} to {target} ({_size(written)})")


@recordings_app.command(
    "delete",
    epilog="\b\nExample:\n  sfu recordings delete standup-20260301T120000Z-k3J9qXb2Lm --token T",
)
def recordings_delete(
    recording: RecordingArg,
    server: ServerOpt = DEFAULT_SERVER_URL,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete a recording and its files (DELETE /api/recordings/ID; admin token)."""
    call(server, token, "DELETE", _recording_path(recording), what=f"recording {recording!r}")
    if as_json:
        print_json({"deleted": recording})
    else:
        typer.echo(f"deleted {recording}")


@recordings_app.command("prune", epilog="\b\nExample:\n  sfu recordings prune --token TOKEN --json")
def recordings_prune(
    server: ServerOpt = DEFAULT_SERVER_URL, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Apply the retention settings now (recording.retention_days, recording.max_total_mb)."""
    answer = call(server, token, "POST", "/api/recordings/prune", {})
    if as_json:
        print_json(answer)
        return
    deleted = answer.get("deleted", [])
    typer.echo(
        f"deleted {len(deleted)} recording(s)" + (": " + ", ".join(deleted) if deleted else "")
    )


# -- load test ------------------------------------------------------------------------------


def _video_size(value: str) -> tuple[int, int]:
    width, sep, height = value.lower().partition("x")
    try:
        size = int(width), int(height)
    except ValueError:
        size = (0, 0)
    if (
        not sep
        or not (64 <= size[0] <= 1920 and 48 <= size[1] <= 1080)
        or size[0] % 2
        or size[1] % 2
    ):
        fail(f"--video-size must be WIDTHxHEIGHT, even, 64x48 to 1920x1080 (got {value!r})", 2)
    return size


@app.command(
    "loadtest",
    epilog="\b\nExamples:\n"
    "  sfu loadtest\n"
    "  sfu loadtest --publishers 2 --subscribers 8 --seconds 30\n"
    "  sfu loadtest --video-size 640x480 --noise 24\n"
    "  sfu loadtest --replay --audio --publishers 10 --subscribers 10 --video-size 640x480\n"
    "  sfu loadtest --server http://10.0.0.5:5000 --room load --video-size 640x480 --json",
)
def loadtest(
    server: ServerOpt = DEFAULT_SERVER_URL,
    room: Annotated[
        str | None,
        typer.Option(
            "--room", "-r", help="SFU room to join. Default: a new random one.", show_default=False
        ),
    ] = None,
    publishers: Annotated[
        int, typer.Option("--publishers", "-p", min=1, help="Synthetic video publishers.")
    ] = 1,
    subscribers: Annotated[
        int, typer.Option("--subscribers", "-n", min=1, help="Receive-only participants.")
    ] = 2,
    seconds: Annotated[
        float, typer.Option(min=0.5, help="Length of the measuring window, after setup.")
    ] = 10,
    video_size: Annotated[str, typer.Option(help="Publishers' video, WIDTHxHEIGHT.")] = "320x240",
    noise: Annotated[
        int,
        typer.Option(
            min=0,
            max=128,
            help="Random colour in every frame, for a realistic bitrate "
            "(24: about 700 kbps at 640x480; 0: a few dozen kbps).",
        ),
    ] = 0,
    timeout: Annotated[
        float,
        typer.Option(min=1, help="Longest setup: joins, publishes and every first frame."),
    ] = 20,
    replay: Annotated[
        bool,
        typer.Option(
            "--replay",
            help="Publishers loop video encoded once at start-up and subscribers check packets "
            "without decoding: the cheap mode that can fill a server.",
        ),
    ] = False,
    audio: Annotated[
        bool, typer.Option("--audio", help="Publishers also send a tone (Opus).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Load-test a running server with synthetic aiortc participants in an SFU room.

    Publishers send VP8 video at 30 fps, their frame numbers drawn in the pixels; subscribers
    receive every publisher (publishers receive nothing). Once every subscriber has its first
    frame, frames are counted for --seconds. Reported per subscriber: frames decoded, frames/s
    per track, time from publish to first frame, frames out of order or damaged, and latency
    from a frame's capture to its decoding. Exits 1 when a subscriber misses a publisher's
    video. The peers use host ICE candidates only (no STUN or TURN). With --replay nothing is
    encoded or decoded per frame: each received frame is known by its checksum among the
    replayed clip's, so the same counts cost a fraction of the CPU.
    """
    _require_http(server)
    width, height = _video_size(video_size)
    import asyncio
    import secrets

    from sfu.loadtest import LoadTestError, run_loadtest

    room = room or f"loadtest-{secrets.token_hex(3)}"
    status = Console(stderr=True).status("starting")  # shown only on a terminal

    async def run() -> Any:
        return await run_loadtest(
            server,
            room,
            publishers=publishers,
            subscribers=subscribers,
            seconds=seconds,
            width=width,
            height=height,
            noise=noise,
            timeout=timeout,
            progress=lambda message: status.update(message),
            replay=replay,
            audio=audio,
        )

    try:
        with status:
            result = asyncio.run(run())
    except LoadTestError as exc:
        fail(str(exc))
    data = result.as_dict()
    if as_json:
        print_json(data)
    else:
        _print_loadtest(data, publishers)
    if data["errors"]:
        more = len(data["errors"]) - 1
        fail(data["errors"][0] + (f" (and {more} more problem(s))" if more else ""))


def _print_loadtest(data: dict[str, Any], publishers: int) -> None:
    def number(value: Any, fmt: str, unit: str = "") -> str:
        return "-" if value is None else f"{value:{fmt}}{unit}"

    table = Table(
        title=f"Load test of room {data['room']} on {data['server']}: {publishers} publisher(s) "
        f"of {data['videoSize']} at {data['fps']} fps, {data['seconds']:.1f} s measured "
        f"after {data['setupSeconds']:.1f} s of setup",
        title_justify="left",
    )
    for column in ("subscriber", "tracks", "frames", "fps", "min fps", "first frame"):
        table.add_column(column, justify="left" if column == "subscriber" else "right")
    table.add_column("latency p50 / p95", justify="right")
    table.add_column("out of order / damaged", justify="right")
    for sub in data["subscribers"]:
        table.add_row(
            Text(sub["userId"]),
            f"{sub['tracks']}/{publishers}",
            str(sub["frames"]),
            f"{sub['fps']:.1f}",
            f"{sub['minFps']:.1f}",
            number(sub["firstFrameSeconds"], ".2f", " s"),
            f"{number(sub['latencyMsP50'], '.0f')} / {number(sub['latencyMsP95'], '.0f')} ms",
            f"{sub['outOfOrder']} / {sub['unclean']}",
        )
    out = console()
    out.print(table)
    sent = ", ".join(
        f"{p['userId']} {p['frames']} frames ({p['fps']:.1f} fps, {p['kbps']:.0f} kbps)"
        for p in data["publishers"]
    )
    out.print(Text(f"publishers: {sent}"))
    out.print(
        Text(
            f"total: {data['totalFrames']} frames decoded of {data['expectedFrames']} sent "
            f"({100 * data['delivered']:.1f}%)"
        )
    )
    if data["clientSaturated"]:
        out.print(
            Text(
                f"note: the publishers made fewer than {data['fps']} fps: this machine, not the "
                "server, limits the test (run fewer peers per process, or smaller video)"
            )
        )


# -- entry point ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> NoReturn:
    """The console script: like ``app()`` but usage errors are one line too."""
    try:
        code = app(args=argv, prog_name="sfu", standalone_mode=False)
    except typer.Abort:
        typer.echo("sfu: aborted", err=True)
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument, ...
        message = exc.format_message()
        if not message:  # no_args_is_help: the help is already printed
            sys.exit(getattr(exc, "exit_code", 2))
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        typer.echo(f"sfu: {message}{hint}", err=True)
        sys.exit(getattr(exc, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)
