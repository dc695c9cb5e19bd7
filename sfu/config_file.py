"""The TOML settings file: find it, read and edit it (keeping comments), explain where each
effective value comes from, and render docs/configuration.md from the settings model.

Editing goes through tomlkit so a hand-written file keeps its comments, order and layout;
every value is checked against the same model the server loads before anything is written.
"""

from __future__ import annotations

import json
import os
import shutil
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import tomlkit
from annotated_types import Ge, Gt, Le, Lt, MultipleOf
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, create_model
from pydantic.fields import FieldInfo
from tomlkit.exceptions import TOMLKitError
from tomlkit.toml_document import TOMLDocument

from sfu.settings import (
    CONFIG_ENV,
    RESTART_REQUIRED,
    Section,
    Settings,
    SettingsError,
    describe_validation_error,
    flatten,
    load_settings,
)

DEFAULT_FILE = Path("sfu.toml")
ENV_PREFIX = "SFU_"


def section_model(section: str) -> type[Section]:
    """The model class of one settings section (``"server"`` -> ``ServerSettings``)."""
    model = Settings.model_fields[section].annotation
    assert isinstance(model, type) and issubclass(model, Section), section
    return model


# The file's own schema: the settings sections without any environment source, so `validate`
# and `set` judge the file alone (pydantic-settings' __init__ would also read SFU_* vars).
# (Any values: mypy checks a ** mapping against create_model's own __config__ and others too.)
_SECTIONS: dict[str, Any] = {
    name: (section_model(name), field) for name, field in Settings.model_fields.items()
}
FileModel: type[BaseModel] = create_model(
    "FileModel", __config__=ConfigDict(extra="forbid"), **_SECTIONS
)


class ConfigFileError(ValueError):
    """A file or key problem; the message is one line."""


# -- locating and reading ---------------------------------------------------------------------


def resolve_path(explicit: str | Path | None = None) -> Path:
    """The file the `config` commands work on: --config, else $SFU_CONFIG, else ./sfu.toml."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else DEFAULT_FILE


def serve_path(explicit: str | Path | None = None) -> Path | None:
    """The file `serve` loads: like resolve_path, but a missing ./sfu.toml just means none.

    An explicit --config or $SFU_CONFIG that does not exist stays an error (load_settings).
    """
    if explicit or os.environ.get(CONFIG_ENV):
        return resolve_path(explicit)
    return DEFAULT_FILE if DEFAULT_FILE.is_file() else None


def read_document(path: Path, *, missing_ok: bool = True) -> TOMLDocument:
    """The parsed file; an empty document when it does not exist (and missing_ok)."""
    if not path.exists():
        if missing_ok:
            return tomlkit.document()
        raise ConfigFileError(f"config file {path}: not found")
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except TOMLKitError as exc:
        raise ConfigFileError(f"config file {path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"config file {path}: cannot read: {exc}") from None


def write_document(path: Path, doc: TOMLDocument) -> None:
    """Replace the file atomically so a crash never leaves half a config behind.

    Writes through a symlink, and keeps the file's mode (it may hold the admin token).
    """
    target = path.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(tomlkit.dumps(doc), encoding="utf-8")
    if target.exists():
        shutil.copymode(target, tmp)
    os.replace(tmp, target)


# -- keys and values --------------------------------------------------------------------------


def split_key(key: str) -> tuple[str, str]:
    """``"server.port"`` -> ``("server", "port")``; ConfigFileError for a key the model lacks."""
    section, _, field = key.partition(".")
    info = Settings.model_fields.get(section)
    section_cls = info.annotation if info else None
    if (
        not isinstance(section_cls, type)
        or not issubclass(section_cls, Section)
        or field not in section_cls.model_fields
    ):
        raise ConfigFileError(f"unknown setting {key!r} (see 'sfu config show' for every key)")
    return section, field


def is_secret(key: str) -> bool:
    """True for keys whose values are never echoed (the admin token)."""
    section, field = split_key(key)
    annotation = section_model(section).model_fields[field].annotation
    return SecretStr in (annotation, *typing.get_args(annotation))


def parse_value(text: str) -> Any:
    """A command-line value: a TOML value when it parses as one (8080, true, ["a"]),
    else the text itself as a string (0.0.0.0, #101418, INFO)."""
    try:
        return tomlkit.value(text).unwrap()
    except Exception:  # whatever tomlkit cannot read as a value is plain text
        return text


def _field_errors(section: str, field: str, value: Any) -> str | None:
    """The model's complaint about one value, or None when it is accepted."""
    section_cls = section_model(section)
    try:
        section_cls.model_validate({field: value})
    except ValidationError as exc:
        # Other fields keep their defaults, so every field error here is about this value. A
        # section-wide rule (empty loc, e.g. ice.turn_secret for turn: entries) relates keys
        # this check leaves at their defaults: the whole file decides it (load, config validate).
        errors = [e for e in exc.errors() if e["loc"]]
        return (
            "; ".join(
                f"{e['msg']} (got {e['input']!r})"
                if len(e["loc"]) == 1
                else f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}"
                for e in errors
            )
            or None
        )
    return None


def value_for(key: str, text: str) -> Any:
    """The value to store for ``key`` given the command-line text; SettingsError if invalid.

    The text is read as TOML first; when the model refuses that but takes the plain string
    (a host of ``127`` or a preset of ``1``), the string wins.
    """
    section, field = split_key(key)
    value = parse_value(text)
    problem = _field_errors(section, field, value)
    if problem is None:
        return value
    if not isinstance(value, str) and _field_errors(section, field, text) is None:
        return text
    raise SettingsError(f"invalid setting {key}: {problem}")


def get_file_value(doc: TOMLDocument, key: str) -> tuple[bool, Any]:
    """``(present, value)`` of a dotted key in the file."""
    section, field = split_key(key)
    table = doc.unwrap().get(section)
    if isinstance(table, dict) and field in table:
        return True, table[field]
    return False, None


def set_value(doc: TOMLDocument, key: str, value: Any) -> None:
    """Set a dotted key in place, creating its [section] table at the end when missing."""
    section, field = split_key(key)
    table = doc.get(section)
    if table is None:
        table = tomlkit.table()
        doc[section] = table
    elif not isinstance(table, dict):
        raise ConfigFileError(f"{section} in the file is not a table")
    table[field] = value


def unset_value(doc: TOMLDocument, key: str) -> bool:
    """Remove a dotted key; False when the file did not set it. Other lines stay as written."""
    section, field = split_key(key)
    table = doc.get(section)
    if not isinstance(table, dict) or field not in table:
        return False
    del table[field]
    return True


def validate_document(doc: TOMLDocument, where: Path | str) -> None:
    """SettingsError naming every bad key when the file's content does not fit the model."""
    try:
        FileModel.model_validate(doc.unwrap())
    except ValidationError as exc:
        raise SettingsError(
            f"invalid setting (config {where}): {describe_validation_error(exc)}"
        ) from None


# -- effective values and their sources -------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    key: str
    value: Any
    source: Literal["default", "file", "env"]
    origin: str | None  # the file path or the environment variable name

    def label(self) -> str:
        return f"{self.source} {self.origin}" if self.origin else self.source


def env_name(key: str) -> str:
    section, field = key.split(".", 1)
    return f"{ENV_PREFIX}{section}__{field}".upper()


def _env_lookup() -> dict[str, str]:
    # pydantic-settings matches SFU_* names case-insensitively.
    return {name.upper(): name for name in os.environ}


def _env_origin(key: str, env: dict[str, str]) -> str | None:
    section, field = key.split(".", 1)
    if env_name(key) in env:
        return env[env_name(key)]
    whole = env.get(f"{ENV_PREFIX}{section}".upper())  # a whole section as JSON
    if whole is not None:
        try:
            if field in json.loads(os.environ[whole]):
                return whole
        except (ValueError, TypeError):
            pass
    guide = {"server.port": "PORT", "server.cors_origins": "CLIENT_URL"}.get(key)
    if guide and os.environ.get(guide):
        return guide
    return None


def effective(path: Path | None) -> list[Entry]:
    """Every key's effective value (as the server would load it) and where it comes from."""
    settings = load_settings(path)
    doc = read_document(path) if path is not None else tomlkit.document()
    env = _env_lookup()
    entries = []
    for key, value in flatten(settings).items():
        origin = _env_origin(key, env)
        if origin:
            entries.append(Entry(key, value, "env", origin))
        elif get_file_value(doc, key)[0]:
            entries.append(Entry(key, value, "file", str(path)))
        else:
            entries.append(Entry(key, value, "default", None))
    return entries


# -- docs/configuration.md --------------------------------------------------------------------

EXAMPLE_TOML = """\
# sfu.toml: only what differs from the defaults.
[server]
host = "0.0.0.0"
port = 8080
cors_origins = ["https://meet.example.org"]
log_level = "INFO"

[auth]
admin_token = "change-me"   # or SFU_AUTH__ADMIN_TOKEN, to keep it out of the file

[[ice.servers]]
urls = ["stun:stun.example.org:3478"]

[[ice.servers]]
urls = ["turn:turn.example.org:3478?transport=udp"]
username = "sfu"
credential = "secret"

[rooms]
max_participants = 8
default_mode = "sfu"

[recording]
directory = "/var/lib/sfu/recordings"
layout = "speaker"
retention_days = 30
"""


def _toml(value: Any) -> str:
    """A default as it would be written in the file."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
        tables = []
        for v in value:
            table = tomlkit.inline_table()
            table.update(v.model_dump())
            tables.append(table.as_string())
        return "[" + ", ".join(tables) + "]"
    return tomlkit.item(value).as_string()


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        name = " or ".join(_type_name(a) for a in rest)
        return f"{name} (optional)" if len(rest) < len(args) else name
    if origin is Literal:
        return "one of " + ", ".join(f"`{_toml(a)}`" for a in args)
    if origin is list:
        (item,) = args
        if isinstance(item, type) and issubclass(item, BaseModel):
            return f"array of tables ({item.__name__})"
        return f"array of {_type_name(item)}s"
    names = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        Path: "path",
        SecretStr: "secret string",
    }
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _constraints(field: FieldInfo) -> str:
    """The field's bounds in words: ``1..65535``, ``≥ 0``, ``multiple of 2``."""
    low = high = None
    parts = []
    for meta in field.metadata:
        if isinstance(meta, Ge):
            low = f"{meta.ge}"
        elif isinstance(meta, Gt):
            low = f"> {meta.gt}"
        elif isinstance(meta, Le):
            high = f"{meta.le}"
        elif isinstance(meta, Lt):
            high = f"< {meta.lt}"
        elif isinstance(meta, MultipleOf):
            parts.append(f"multiple of {meta.multiple_of}")
        elif getattr(meta, "min_length", None) is not None:
            parts.append(f"at least {meta.min_length}")
    if low and high and not low.startswith(">") and not high.startswith("<"):
        parts.insert(0, f"{low}..{high}")
    else:
        if high:
            parts.insert(0, high if high.startswith("<") else f"≤ {high}")
        if low:
            parts.insert(0, low if low.startswith(">") else f"≥ {low}")
    return ", ".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _field_rows(model: type[BaseModel], section: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        key = f"{section}.{name}"
        kind = _type_name(field.annotation)
        limits = _constraints(field)
        if limits:
            kind += f", {limits}"
        default = field.get_default(call_default_factory=True)
        shown = "unset" if default is None else f"`{_toml(default)}`"
        description = field.description or ""
        if key in RESTART_REQUIRED:
            description += " Read at start-up: a live change needs a restart."
        rows.append(
            f"| `{name}` | {_cell(kind)} | {_cell(shown)} | `{env_name(key)}` "
            f"| {_cell(description.strip())} |"
        )
    return rows


def _nested_models(model: type[BaseModel]) -> list[tuple[str, type[BaseModel]]]:
    found = []
    for name, field in model.model_fields.items():
        for arg in typing.get_args(field.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                found.append((name, arg))
    return found


def render_configuration_doc() -> str:
    """docs/configuration.md, generated from the settings model (scripts/gen-config-doc)."""
    out = [
        "# Configuration",
        "",
        "<!-- Generated from sfu/settings.py by scripts/gen-config-doc; do not edit by hand. -->",
        "",
        "Every setting of the server has a dotted key `section.name`, a type checked when the",
        "server starts (a bad value stops it with one line naming the key), and a default that",
        "is safe on one machine: the server listens on 127.0.0.1:5000 and uses no STUN or TURN",
        "server until you add some.",
        "",
        "## Sources and precedence",
        "",
        "Lowest to highest; a later source overrides an earlier one key by key:",
        "",
        "1. the defaults below;",
        "2. a TOML file: `--config FILE`, else the file named by `SFU_CONFIG`, else `./sfu.toml`",
        "   when it exists (an explicit `--config` or `SFU_CONFIG` that does not exist is an",
        "   error);",
        "3. the architecture guide's plain variables: `PORT` sets `server.port` and",
        "   `CLIENT_URL` sets `server.cors_origins` to that one origin;",
        "4. environment variables `SFU_<SECTION>__<NAME>` (double underscore), e.g.",
        "   `SFU_SERVER__PORT=8080` or `SFU_RECORDING__DIRECTORY=/srv/recordings`; arrays and",
        "   tables are written as JSON, e.g. `SFU_SERVER__CORS_ORIGINS='[\"https://a.example\"]'`;",
        "5. command-line flags of `sfu serve`: `--host`, `--port`, `--log-level`.",
        "",
        "`sfu config show` prints every key with its effective value and its source;",
        "`sfu config set KEY VALUE` edits the file (keeping its comments) after checking the",
        "value; `sfu config validate` checks a file. See [cli.md](cli.md).",
        "",
        "A running server can change most settings live through the admin API",
        "(`PATCH /api/settings`, or `sfu settings set KEY VALUE`); such changes last until the",
        "server stops. Keys marked *read at start-up* are stored but take effect after a",
        "restart.",
        "",
        "## Example",
        "",
        "```toml",
        EXAMPLE_TOML.rstrip("\n"),
        "```",
        "",
    ]
    for section in Settings.model_fields:
        model = section_model(section)
        out += [f"## `[{section}]`", ""]
        if model.__doc__ and not model.__doc__.startswith(Section.__doc__ or "\0"):
            out += [model.__doc__.strip(), ""]
        out += [
            "| key | type | default | environment | description |",
            "|---|---|---|---|---|",
            *_field_rows(model, section),
            "",
        ]
        for name, nested in _nested_models(model):
            out += [
                f"Each entry of `{section}.{name}` (`[[{section}.{name}]]` in TOML) has:",
                "",
                "| key | type | default | description |",
                "|---|---|---|---|",
            ]
            for sub, field in nested.model_fields.items():
                default = (
                    "required"
                    if field.is_required()
                    else "unset"
                    if field.get_default() is None
                    else f"`{_toml(field.get_default())}`"
                )
                out.append(
                    f"| `{sub}` | {_cell(_type_name(field.annotation))} | {default} "
                    f"| {_cell(field.description or '')} |"
                )
            out.append("")
    return "\n".join(out)
