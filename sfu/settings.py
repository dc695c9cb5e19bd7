"""The typed settings model: one place for every tunable of the server.

Sources, lowest to highest precedence: defaults, a TOML file (``--config`` or ``SFU_CONFIG``),
the guide's plain variables ``PORT`` and ``CLIENT_URL``, environment variables
``SFU_<SECTION>__<KEY>``, and command-line flags (passed as init values).
"""

from __future__ import annotations

import ipaddress
import os
import re
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_ENV = "SFU_CONFIG"
_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


class Section(BaseModel):
    """A settings section: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ServerSettings(Section):
    host: str = Field("127.0.0.1", description="Address the HTTP server listens on.")
    port: int = Field(5000, ge=1, le=65535, description="TCP port for HTTP, Socket.IO and the app.")
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed by CORS and Socket.IO besides the server's own "
        "(the guide's CLIENT_URL adds one). Empty: same origin only.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Logging level."
    )
    shutdown_grace_seconds: float = Field(
        1.0, ge=0, le=60, description="How long participants are given after the shutdown notice."
    )
    static_dir: Path | None = Field(
        None, description="Serve the web app from this folder instead of the packaged build."
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the server answers to (name: any port, name:port, *.suffix) "
        "besides the loopback names, which are always accepted; other Host headers get 400 "
        "invalid_host (DNS rebinding). Empty: the listening address and the hosts of "
        "cors_origins, or any host when listening on a wildcard address. '*': any.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For "
        "names the client (per-address limits) and whose X-Forwarded-Proto the scheme (Origin "
        "check). Empty: the TCP peer is the client.",
    )
    ping_interval_seconds: float = Field(
        5,
        ge=1,
        le=300,
        description="Engine.IO ping interval: how often the server checks that a browser is "
        "still there.",
    )
    ping_timeout_seconds: float = Field(
        5,
        ge=1,
        le=300,
        description="Engine.IO ping timeout: a browser that has not answered a ping this long "
        "after it was due is disconnected and its room slot freed (a frozen participant "
        "leaves within interval + timeout).",
    )
    redis_url: SecretStr | None = Field(
        None,
        description="Redis (redis://[:password@]host:port/db) holding the room directory "
        "shared by several nodes: rooms keep their mode, access settings, moderators and chat "
        "across restarts, and any node takes any participant (docs/deployment.md, Several "
        "nodes). Unset: one process, rooms in memory.",
    )
    node_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="This node's name in the directory (with redis_url). Unset: the host "
        "name and a random suffix, new at every start.",
    )
    node_lease_seconds: float = Field(
        10,
        ge=2,
        le=300,
        description="With redis_url: a node that has not renewed its lease this long is "
        "taken for dead; its participants are disconnected (they rejoin elsewhere) and its "
        "rooms are taken over by the next join.",
    )
    room_keep_seconds: float = Field(
        120,
        ge=5,
        le=86400,
        description="With redis_url: how long a room nobody is in (after its node stopped "
        "or died) stays in the directory for its participants to come back.",
    )


class AuthSettings(Section):
    admin_token: SecretStr | None = Field(
        None, description="Bearer token for the admin routes. Unset: admin routes answer 401."
    )
    token_secret: SecretStr | None = Field(
        None,
        description="HS256 secret that signs join tokens (JWT; sfu token create). Unset: "
        "tokens are refused unless token_public_key is set.",
    )
    token_secret_previous: SecretStr | None = Field(
        None,
        description="The secret before the last rotation: tokens it signed stay valid, so "
        "two secrets are valid at once.",
    )
    token_public_key: str | None = Field(
        None,
        description="PEM public key (ES256) for join tokens signed by the operator's own "
        "application with its private key.",
    )


class IceServer(Section):
    urls: list[str] = Field(min_length=1, description="stun:, turn: or turns: URLs.")
    username: str | None = Field(
        None,
        description="Static TURN username. Unset on a turn: entry: minted per participant "
        "from ice.turn_secret.",
    )
    # A secret: masked in GET /api/settings, logs and errors; only joined participants get it.
    credential: SecretStr | None = Field(None, description="Static TURN password.")

    @field_validator("urls", mode="before")
    @classmethod
    def _one_url(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("urls")
    @classmethod
    def _scheme(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("stun:", "turn:", "turns:")):
                raise ValueError(f"{url!r} is not a stun:, turn: or turns: URL")
        return urls

    @model_validator(mode="after")
    def _pair(self) -> IceServer:
        if (self.username is None) != (self.credential is None):
            raise ValueError("username and credential go together: give both or neither")
        return self

    @property
    def needs_minting(self) -> bool:
        """A turn:/turns: entry without static credentials (coturn's use-auth-secret)."""
        return self.username is None and any(u.startswith(("turn:", "turns:")) for u in self.urls)


class IceSettings(Section):
    servers: list[IceServer] = Field(
        default_factory=list,
        description="STUN/TURN servers handed to browsers and used by the SFU. Empty by default.",
    )
    host_addresses: list[str] = Field(
        default_factory=list,
        description="Addresses the SFU gathers candidates on. Empty: all non-loopback interfaces.",
    )
    announced_address: str | None = Field(
        None, description="Public address announced in SFU candidates (server behind 1:1 NAT)."
    )
    sfu_servers: list[IceServer] | None = Field(
        None,
        description="STUN/TURN servers the SFU itself uses for its own candidates. Unset: the "
        "same list as servers. Empty list: host candidates only.",
    )
    turn_secret: SecretStr | None = Field(
        None,
        description="coturn's static-auth-secret (use-auth-secret): turn:/turns: entries of "
        "servers without a username get time-limited credentials minted per participant.",
    )
    turn_ttl_seconds: int = Field(
        86400,
        ge=60,
        le=30 * 86400,
        description="Lifetime of minted TURN credentials; renewed before they expire.",
    )
    udp_port_range: str | None = Field(
        None,
        description="'MIN-MAX' (e.g. '40000-40999'): every SFU UDP socket binds a port in "
        "this range. Unset: the kernel's ephemeral range.",
    )
    udp_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Single-port mode: every SFU connection shares this one UDP port "
        "(demultiplexed by STUN username, then remote address). Overrides udp_port_range.",
    )

    @field_validator("host_addresses")
    @classmethod
    def _addresses(cls, addresses: list[str]) -> list[str]:
        for address in addresses:  # a typo fails here, not later as a silent lack of media
            ipaddress.ip_address(address)
        return addresses

    @field_validator("udp_port_range")
    @classmethod
    def _port_range(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = re.fullmatch(r"\s*(\d{1,5})\s*-\s*(\d{1,5})\s*", value)
        if not match or not 1024 <= int(match[1]) <= int(match[2]) <= 65535:
            raise ValueError(f"{value!r} is not a port range 'MIN-MAX' within 1024-65535")
        return f"{int(match[1])}-{int(match[2])}"

    @model_validator(mode="after")
    def _turn_needs_credentials(self) -> IceSettings:
        # Browsers refuse a turn: server without credentials (the whole RTCPeerConnection).
        if self.turn_secret is not None and self.turn_secret.get_secret_value():
            return self
        for key, servers in (("servers", self.servers), ("sfu_servers", self.sfu_servers)):
            for index, server in enumerate(servers or []):
                if server.needs_minting:
                    raise ValueError(
                        f"ice.{key}[{index}] is a turn:/turns: server without username and "
                        "credential: set ice.turn_secret (coturn's static-auth-secret) or give "
                        "both"
                    )
        return self

    @property
    def port_range(self) -> tuple[int, int] | None:
        """``udp_port_range`` as ``(min, max)``, or None."""
        if self.udp_port_range is None:
            return None
        low, high = self.udp_port_range.split("-")
        return int(low), int(high)


class RoomsSettings(Section):
    max_participants: int = Field(16, ge=1, le=1000, description="Participants per room.")
    max_rooms: int = Field(100, ge=1, le=100000, description="Rooms per server.")
    default_mode: Literal["p2p", "sfu"] = Field(
        "p2p", description="Mode of a room created by a join that names none."
    )
    chat_history: int = Field(50, ge=0, le=1000, description="Chat messages kept for joiners.")
    empty_room_ttl_seconds: float = Field(
        300, ge=0, description="How long a room made by POST /api/rooms waits for its first joiner."
    )
    access: Literal["open", "password", "token"] = Field(
        "open",
        description="Who may enter a room: open (anyone with the link), password (rooms need "
        "one: set by the creator), token (every join needs a signed join token). A room can "
        "be stricter than this, never looser.",
    )
    create_on_join: bool = Field(
        True,
        description="A join to an unknown room creates it. False: only POST /api/rooms, a "
        "token with createRoom, or the home page's New meeting make rooms; a mistyped link "
        "gets unknown_room.",
    )
    lobby_timeout_seconds: float = Field(
        120, ge=5, le=3600, description="How long a knock on a locked room waits for a moderator."
    )
    removal_ban_seconds: float = Field(
        600,
        ge=0,
        le=7 * 86400,
        description="A removed participant cannot rejoin the room with the same identity or "
        "token for this long.",
    )
    create_per_minute: int = Field(
        30,
        ge=1,
        description="Rooms a client address may create per minute (bursts of 5), by POST "
        "/api/rooms and by join-room alike.",
    )


class SimulcastLayer(Section):
    """One encoding of a simulcast camera (RFC 8853), as the app asks the browser for it."""

    rid: str = Field(
        ..., pattern=r"^[A-Za-z0-9]{1,8}$", description="The encoding's RTP stream id."
    )
    scale_down: float = Field(
        ..., ge=1, le=16, description="Resolution divided by this (scaleResolutionDownBy)."
    )
    max_bitrate_kbps: int = Field(..., ge=30, le=20000, description="The encoding's maxBitrate.")


_DEFAULT_LAYERS = [
    SimulcastLayer(rid="q", scale_down=4, max_bitrate_kbps=150),
    SimulcastLayer(rid="h", scale_down=2, max_bitrate_kbps=500),
    SimulcastLayer(rid="f", scale_down=1, max_bitrate_kbps=1500),
]


class SfuSettings(Section):
    video_codec: Literal["VP8", "H264"] = Field("VP8", description="Codec for all SFU video.")
    max_video_bitrate_kbps: int = Field(
        1500, ge=50, le=20000, description="Cap on publishers' video bitrate (SDP and REMB)."
    )
    keyframe_min_interval_ms: int = Field(
        500, ge=0, le=10000, description="Least time between keyframe requests to one publisher."
    )
    subscriber_queue_frames: int = Field(
        60, ge=4, le=2000, description="Frames queued per subscriber before dropping to a keyframe."
    )
    jitter_timeout_ms: int = Field(
        300, ge=20, le=5000, description="Longest wait for a lost packet before skipping ahead."
    )
    disconnected_timeout_seconds: float = Field(
        10, ge=1, le=300, description="A connection failed or disconnected this long is closed."
    )
    negotiation_timeout_seconds: float = Field(
        15, ge=1, le=300, description="Longest wait for a browser's answer to an SFU offer."
    )
    audio_level_interval_ms: int = Field(
        250, ge=50, le=10000, description="How often changed audio levels are pushed."
    )
    simulcast: bool = Field(
        True,
        description="Browsers publish cameras in several encodings (simulcast_layers); "
        "each subscriber gets the one its link and tile size call for. VP8 only.",
    )
    simulcast_layers: list[SimulcastLayer] = Field(
        default_factory=lambda: list(_DEFAULT_LAYERS),
        min_length=2,
        max_length=4,
        description="The camera's encodings, lowest first: distinct rids, scale_down "
        "falling, bitrates rising.",
    )
    simulcast_switch_seconds: float = Field(
        0,
        ge=0,
        le=60,
        description="Testing: every this many seconds each simulcast subscriber is moved "
        "to the next of: each layer, then the top one's base temporal layer only (0: never).",
    )

    @model_validator(mode="after")
    def _layers_lowest_first(self) -> SfuSettings:
        layers = self.simulcast_layers
        if len({layer.rid for layer in layers}) != len(layers):
            raise ValueError("simulcast_layers: rids must be distinct")
        for low, high in zip(layers, layers[1:], strict=False):
            if not (
                low.scale_down > high.scale_down and low.max_bitrate_kbps < high.max_bitrate_kbps
            ):
                raise ValueError(
                    "simulcast_layers: lowest first (scale_down falling, bitrates rising)"
                )
        return self


class RecordingSettings(Section):
    directory: Path = Field(Path("recordings"), description="Where recordings are written.")
    layout: Literal["grid", "speaker", "audio"] = Field(
        "grid", description="Composite layout; audio: the mixed audio only, no video."
    )
    audio_format: Literal["ogg", "m4a"] = Field(
        "ogg", description="File of an audio-only recording: Opus in Ogg, or AAC in M4A."
    )
    width: int = Field(1280, ge=160, le=3840, multiple_of=2, description="Output width.")
    height: int = Field(720, ge=120, le=2160, multiple_of=2, description="Output height.")
    fps: int = Field(30, ge=1, le=60, description="Output frame rate.")
    container: Literal["mp4", "webm"] = Field(
        "mp4", description="mp4: H.264 + AAC, fragmented. webm: VP8 + Opus."
    )
    video_crf: int = Field(23, ge=0, le=51, description="Constant rate factor for H.264.")
    video_bitrate_kbps: int | None = Field(
        None, ge=100, description="Target video bitrate; overrides CRF when set."
    )
    preset: str = Field("veryfast", description="x264 preset.")
    audio_bitrate_kbps: int = Field(128, ge=16, le=512, description="Audio bitrate.")
    background: str = Field("#101418", description="Background colour, #rrggbb.")
    labels: bool = Field(True, description="Draw participant names on tiles.")
    font: Path | None = Field(
        None,
        description="A TrueType/OpenType font for names on tiles. Unset: the installed "
        "fonts with the widest coverage (docs/recording.md).",
    )
    auto_start: bool = Field(
        False,
        description="Record every room: an SFU room when its first participant publishes, "
        "a P2P room when its first participant joins (through the publish-only uplinks).",
    )
    who_can_record: Literal["moderators", "anyone"] = Field(
        "moderators",
        description="Who may start and stop a recording from the app: moderators (and "
        "holders of a token with the record grant), or anyone. 'creator' is read as "
        "moderators.",
    )

    @field_validator("who_can_record", mode="before")
    @classmethod
    def _creator_is_moderators(cls, value: Any) -> Any:
        return "moderators" if value == "creator" else value

    raw: bool = Field(False, description="Also remux each track to its own file, undecoded.")
    retention_days: float = Field(
        0, ge=0, description="Delete recordings older than this; 0: keep."
    )
    max_total_mb: int = Field(0, ge=0, description="Delete oldest beyond this total; 0: no cap.")
    latency_ms: int = Field(
        1000,
        ge=0,
        le=5000,
        description="How far the recording runs behind live, so late packets still make it in.",
    )
    keyframe_seconds: float = Field(
        1.0,
        gt=0,
        le=10,
        description="Keyframe (and MP4 fragment) interval: at most this much "
        "is lost if the server dies mid-recording.",
    )
    encoder_threads: int = Field(
        2,
        ge=0,
        le=16,
        description="Threads for the video encoder; 0: one per core. Fewer threads cost less "
        "CPU in all.",
    )
    min_free_mb: int = Field(
        200, ge=0, description="Stop a recording cleanly when free disk space falls below this."
    )
    webhook_url: str | None = Field(
        None,
        description="POSTed the sidecar JSON when a recording starts, ends or fails "
        "(signed with webhook_secret, retried with backoff).",
    )
    webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key of the webhook's signature header."
    )
    finalize_command: list[str] | None = Field(
        None,
        description="Run with the file's path appended once a recording is complete; its "
        "exit status and output go into the sidecar.",
    )
    finalize_timeout_seconds: float = Field(
        300, gt=0, le=86400, description="A finalize command running longer is killed."
    )

    @field_validator("background")
    @classmethod
    def _colour(cls, value: str) -> str:
        if not _HEX_COLOUR.match(value):
            raise ValueError("must be a colour like #101418")
        return value


class LimitsSettings(Section):
    max_payload_bytes: int = Field(
        65536, ge=1024, le=10_000_000, description="Largest Socket.IO event payload accepted."
    )
    id_max_length: int = Field(64, ge=8, le=256, description="Longest room or user id.")
    name_max_length: int = Field(64, ge=1, le=256, description="Longest display name.")
    room_name_max_length: int = Field(
        100, ge=1, le=256, description="Longest meeting display name (roomName)."
    )
    chat_max_length: int = Field(2000, ge=1, le=100000, description="Longest chat message.")
    emoji_max_length: int = Field(16, ge=1, le=64, description="Longest emoji reaction string.")
    chat_per_second: float = Field(2, gt=0, description="Chat messages per second per socket.")
    chat_burst: int = Field(10, ge=1, description="Chat burst size per socket.")
    emoji_per_second: float = Field(4, gt=0, description="Emoji reactions per second per socket.")
    emoji_burst: int = Field(10, ge=1, description="Emoji burst size per socket.")
    signal_per_second: float = Field(50, gt=0, description="Signaling messages/s per socket.")
    signal_burst: int = Field(300, ge=1, description="Signaling burst size per socket.")
    other_per_second: float = Field(10, gt=0, description="Other events per second per socket.")
    other_burst: int = Field(30, ge=1, description="Other events burst size per socket.")
    max_sockets_per_address: int = Field(
        50, ge=0, description="Socket.IO connections open at once per client address; 0: no cap."
    )
    max_json_depth: int = Field(
        32, ge=2, le=256, description="Deepest nesting of arrays and objects in an event payload."
    )
    password_attempts_per_minute: int = Field(
        5,
        ge=1,
        description="Wrong room passwords (and bad join tokens) per client address per "
        "minute, and per room per minute (x10), before wrong_password turns into rate_limited.",
    )
    room_lookups_per_minute: int = Field(
        60, ge=1, description="GET /api/rooms/{id} per client address per minute (non-admin)."
    )


class _GuideVariables(PydanticBaseSettingsSource):
    """The architecture guide's plain PORT and CLIENT_URL variables."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        server: dict[str, Any] = {}
        if os.environ.get("PORT"):
            server["port"] = os.environ["PORT"]
        if os.environ.get("CLIENT_URL"):
            server["cors_origins"] = [os.environ["CLIENT_URL"]]
        return {"server": server} if server else {}


class Settings(BaseSettings):
    """Every setting of the server, by section."""

    model_config = SettingsConfigDict(
        env_prefix="SFU_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
        nested_model_default_partial_update=True,
    )

    server: ServerSettings = Field(default_factory=ServerSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    ice: IceSettings = Field(default_factory=IceSettings)
    rooms: RoomsSettings = Field(default_factory=RoomsSettings)
    sfu: SfuSettings = Field(default_factory=SfuSettings)
    recording: RecordingSettings = Field(default_factory=RecordingSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)

    # Set per load() call; pydantic-settings reads sources through the class.
    _config_file: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            EnvSettingsSource(settings_cls, env_prefix="SFU_", env_nested_delimiter="__"),
            _GuideVariables(settings_cls),
        ]
        if _LOADING_FILE is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=_LOADING_FILE))
        return tuple(sources)


_LOADING_FILE: Path | None = None


class SettingsError(ValueError):
    """Settings could not be loaded; the message is one line naming the key and the problem."""


def _secret_fields() -> set[str]:
    """Names of the fields holding secrets: an error never echoes their input."""
    return {
        name
        for section in Section.__subclasses__()
        for name, info in section.model_fields.items()
        if SecretStr in (info.annotation, *typing.get_args(info.annotation))
    }


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem: ``server.port: Input should be ... (got 99999)``."""
    parts = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "settings"
        got = item.get("input")
        hidden = isinstance(got, dict) or any(part in _secret_fields() for part in item["loc"])
        shown = "" if hidden else f" (got {got!r})"
        parts.append(f"{key}: {item['msg']}{shown}")
    return "; ".join(parts)


def config_path(explicit: str | Path | None = None) -> Path | None:
    """The TOML file in use: an explicit path, else ``$SFU_CONFIG``, else none."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else None


def load_settings(
    config_file: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Build the settings from every source. Raises SettingsError with one clear line."""
    global _LOADING_FILE
    path = config_path(config_file)
    if path is not None and not path.is_file():
        raise SettingsError(f"config file {path}: not found")
    _LOADING_FILE = path
    try:
        return Settings(**(overrides or {}))
    except ValidationError as exc:
        where = f" (config {path})" if path else ""
        raise SettingsError(f"invalid setting{where}: {describe_validation_error(exc)}") from None
    except Exception as exc:  # a TOML syntax error, for one
        raise SettingsError(f"cannot read settings from {path}: {exc}") from None
    finally:
        _LOADING_FILE = None


def flatten(model: BaseModel, prefix: str = "") -> dict[str, Any]:
    """Dotted keys to JSON-ready values (secrets masked), e.g. ``{"server.port": 5000}``."""
    out: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = f"{prefix}{name}"
        if isinstance(value, Section) and not isinstance(value, IceServer):
            out.update(flatten(value, key + "."))
        elif isinstance(value, list):
            out[key] = [_shown(v.model_dump()) if isinstance(v, BaseModel) else v for v in value]
        else:
            out[key] = _shown(value)
    return out


def _shown(value: Any) -> Any:
    """A value as GET /api/settings and the logs show it: secrets masked, at any depth."""
    if isinstance(value, SecretStr):
        return "********" if value.get_secret_value() else None
    if isinstance(value, dict):
        return {k: _shown(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


# Keys read only at start-up: a change through the admin API is stored but needs a restart.
RESTART_REQUIRED = frozenset(
    {
        "server.host",
        "server.port",
        "server.static_dir",
        "server.ping_interval_seconds",
        "server.ping_timeout_seconds",
        "server.redis_url",
        "server.node_id",
        "limits.max_payload_bytes",
    }
)


def apply_changes(settings: Settings, changes: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Validate dotted-key changes, then apply them all in place (or none).

    The changes of one section are checked together, so a rule spanning fields (a TURN entry
    that needs ``ice.turn_secret``) sees the new values of both. Returns ``(applied,
    restart_required)``. Raises SettingsError naming the first bad key.
    """
    by_section: dict[str, dict[str, Any]] = {}
    for key, value in changes.items():
        section_name, _, field = key.partition(".")
        section = (
            getattr(settings, section_name, None) if section_name in Settings.model_fields else None
        )
        if not isinstance(section, Section) or field not in type(section).model_fields:
            raise SettingsError(f"unknown setting {key!r}")
        by_section.setdefault(section_name, {})[field] = value
    staged: list[tuple[Section, dict[str, Any]]] = []
    for section_name, fields in by_section.items():
        section = getattr(settings, section_name)
        current = {name: getattr(section, name) for name in type(section).model_fields}
        try:
            checked = type(section).model_validate({**current, **fields})
        except ValidationError as exc:
            located = [e["loc"][0] for e in exc.errors() if e["loc"] and e["loc"][0] in fields]
            key = f"{section_name}.{located[0] if located else next(iter(fields))}"
            raise SettingsError(
                f"invalid setting {key}: {describe_validation_error(exc).split(': ', 1)[-1]}"
            ) from None
        staged.append((section, {name: getattr(checked, name) for name in fields}))
    for section, values in staged:
        # Checked together above; assigning one by one would re-run the section's
        # cross-field rules against half-applied values.
        section.__dict__.update(values)
    keys = list(changes)
    return [k for k in keys if k not in RESTART_REQUIRED], [
        k for k in keys if k in RESTART_REQUIRED
    ]
