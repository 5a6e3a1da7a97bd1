"""The sources file: many connectors of any kind, each with a unique name, from one YAML file.

``crisiswatch connect --sources sources.yaml [--only NAME]`` reads a document like::

    brands: brands.yaml            # optional: the brands file of the keyword-filtered kinds (bluesky, x)
    sources:
      - name: mastodon-acme
        kind: mastodon
        base_url: https://mastodon.social
        timeline: hashtag
        tag: acme
        token_env: MASTODON_TOKEN  # credentials: the NAME of an environment variable, never the value

Every *kind* registers a pydantic model of its options and a builder with `source_kind`; the generic
connectors (``rss``, ``sse``, ``websocket``, ``poll``, ``webhook``) and ``replay`` are registered here, the platforms
by their own modules in `connectors.platforms` (found by `kinds`). A malformed file gives one line per
problem (`SourcesFileError`), naming the entry and the option.

Durations carry their unit, as everywhere on the command line (`crisiswatch.durations`): options typed
`Duration` take ``90s``, ``2m``, ``1h30m`` or ISO 8601 (``PT2M``); a bare number such as ``interval: 120``
is refused with a hint (``write 120s, 120m, …``), so ten can never silently mean ten seconds when ten
minutes were meant. Options that used to say their unit in their name (``overlap_seconds``, …) are
`RENAMED`; the old name is refused with the new one.
"""

from __future__ import annotations

import functools
import importlib
import os
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from crisiswatch.connectors.base import Backoff, Connector, StateStore
from crisiswatch.connectors.mapping import FieldMapping
from crisiswatch.connectors.replay import DEFAULT_REORDER_WINDOW
from crisiswatch.detectors.brands import BrandsConfig, BrandsFileError
from crisiswatch.durations import DurationError, parse_duration
from crisiswatch.settings import Settings

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SOURCE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
INLINE_SECRET_KEYS = frozenset(
    {"token", "bearer_token", "access_token", "api_key", "apikey", "key", "secret", "client_secret", "password"}
)

RENAMED = {
    "cursor_margin_seconds": "cursor_margin",
    "overlap_seconds": "overlap",
    "backfill_seconds": "backfill",
    "lookback_seconds": "lookback",
    "stall_seconds": "stall_timeout",
    "search_max_age_days": "search_max_age",
}
"""Options renamed when durations got units: old name -> new name."""
_ZERO_UNITS = r"[smhdw]|secs?|seconds?|mins?|minutes?|hrs?|hours?|days?|weeks?"
_ZERO = re.compile(rf"^\s*(?:0+(?:\.0*)?|\.0+)\s*(?:{_ZERO_UNITS})?\s*$", re.IGNORECASE)


def _seconds(value: Any, info: ValidationInfo, *, allow_zero: bool) -> Any:
    """Seconds of a duration option. From a sources file (validation context ``{"file": True}``) a duration
    needs its unit; Python callers may pass seconds as a number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"a duration with a unit, like 90s, 2m or PT2M (got {type(value).__name__})")
    if isinstance(value, int | float) and not (info.context or {}).get("file"):
        return value
    text = str(value)
    if allow_zero and _ZERO.match(text):
        return 0.0
    try:
        return parse_duration(text)
    except DurationError as exc:
        raise ValueError(str(exc)) from None


def _duration(value: Any, info: ValidationInfo) -> Any:
    return _seconds(value, info, allow_zero=False)


def _duration_or_zero(value: Any, info: ValidationInfo) -> Any:
    return _seconds(value, info, allow_zero=True)


Duration = Annotated[float, BeforeValidator(_duration)]
"""A duration option of a sources file, in seconds once parsed: ``90s``, ``2m``, ``PT2M``; never a bare number."""
DurationOrZero = Annotated[float, BeforeValidator(_duration_or_zero)]
"""Like `Duration`, and ``0`` (or ``0s``) is allowed."""


def is_duration(metadata: list[Any]) -> bool:
    """Whether a pydantic field's metadata marks it as a `Duration` / `DurationOrZero`."""
    return any(isinstance(m, BeforeValidator) and m.func in (_duration, _duration_or_zero) for m in metadata)


class SourcesFileError(ValueError):
    """A sources file that cannot be used: ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class SourceConfig(BaseModel):
    """Options every entry has: a unique ``name`` (metrics, logs, checkpoint key) and its ``kind``.

    Kinds subclass this with their own options; unknown options are errors (typos do not pass silently).
    Options named ``*_env`` hold environment variable names.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Unique name of this entry.")
    kind: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.match(SOURCE_NAME, value):
            raise ValueError("use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _env_names(cls, value: Any, info: Any) -> Any:
        if info.field_name.endswith("_env") and value is not None and not ENV_NAME.match(str(value)):
            raise ValueError(f"must be an environment variable name (like MY_TOKEN), got {str(value)[:40]!r}")
        return value


C = TypeVar("C", bound=SourceConfig)


@dataclass
class BuildContext:
    """What builders get besides their entry: settings, the sources file's folder, brands and secrets."""

    settings: Settings
    base_dir: Path = Path(".")
    brands_path: Path | None = None
    _brands: BrandsConfig | None = field(default=None, repr=False)

    def path(self, value: str | Path) -> Path:
        """A path of the sources file, relative to the file's folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def state(self, config: SourceConfig) -> StateStore:
        """The checkpoint of an entry, keyed by its kind and name."""
        return StateStore.for_connector(self.settings.connectors.connector_state_dir, config.kind, config.name)

    def backoff(self) -> Backoff:
        connectors = self.settings.connectors
        return Backoff(connectors.connector_backoff_initial_seconds, connectors.connector_backoff_max_seconds)

    def http(self) -> dict[str, Any]:
        """``backoff``, ``timeout`` and ``user_agent`` keyword arguments from settings."""
        return {
            "backoff": self.backoff(),
            "timeout": self.settings.connectors.connector_timeout_seconds,
            "user_agent": self.settings.connectors.connector_user_agent,
        }

    def secret(self, config: SourceConfig, env_name: str | None, *, required: bool = True) -> str | None:
        """The value of the environment variable ``env_name`` (a `SourcesFileError` when required and unset)."""
        if env_name is None:
            if required:
                raise SourcesFileError([f"{config.name} ({config.kind}): a credential variable (…_env) is required"])
            return None
        value = os.environ.get(env_name, "").strip()
        if not value and required:
            raise SourcesFileError([f"{config.name} ({config.kind}): environment variable {env_name} is not set"])
        return value or None

    def brands(self) -> BrandsConfig:
        """The brands file: the sources file's ``brands``, else ``CRISISWATCH_BRANDS_FILE`` (read once)."""
        if self._brands is None:
            from crisiswatch.brands_file import load_brands

            path = self.brands_path or self.settings.worker.brands_file
            try:
                self._brands = load_brands(path)
            except BrandsFileError as exc:
                raise SourcesFileError([f"brands: {exc}"]) from None
        return self._brands

    def mapping(self, config: SourceConfig, path: str, source: str | None = None) -> FieldMapping:
        """Read a mapping file named by an entry."""
        try:
            return FieldMapping.load(self.path(path), source)
        except (OSError, ValueError) as exc:
            raise SourcesFileError([f"{config.name} ({config.kind}): mapping {path}: {exc}"]) from None


@dataclass(frozen=True)
class SourceKind(Generic[C]):
    """One registered kind: its options model and the builder of its connector."""

    kind: str
    model: type[C]
    build: Callable[[C, BuildContext], Connector]


_KINDS: dict[str, SourceKind[Any]] = {}


def source_kind(kind: str, model: type[C]) -> Callable[[Callable[[C, BuildContext], Connector]], Any]:
    """Register ``kind``: decorate its builder, ``def build(config: Model, ctx: BuildContext) -> Connector``."""

    def register(build: Callable[[C, BuildContext], Connector]) -> Callable[[C, BuildContext], Connector]:
        if kind in _KINDS and _KINDS[kind].build is not build:
            raise ValueError(f"source kind {kind!r} registered twice")
        _KINDS[kind] = SourceKind(kind, model, build)
        return build

    return register


@functools.cache
def _load_platforms() -> None:
    import crisiswatch.connectors.platforms as package

    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{module.name}")


def kinds() -> dict[str, SourceKind[Any]]:
    """Every registered kind (the generic ones and every module of `connectors.platforms`)."""
    _load_platforms()
    return dict(_KINDS)


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "options"


def parse_sources(data: Any, origin: str = "sources file") -> list[SourceConfig]:
    """Validate a loaded sources document; every problem becomes one line of a `SourcesFileError`."""
    if not isinstance(data, dict) or not isinstance(data.get("sources"), list):
        raise SourcesFileError([f"{origin}: expected a mapping with a 'sources' list"])
    unknown_top = set(data) - {"sources", "brands"}
    problems = [f"{origin}: unknown top-level key {key!r}" for key in sorted(unknown_top)]
    registry = kinds()
    configs: list[SourceConfig] = []
    names: set[str] = set()
    for index, entry in enumerate(data["sources"]):
        label = f"{origin}: sources[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{label}: an entry is a mapping with 'name' and 'kind'")
            continue
        if isinstance(entry.get("name"), str):
            label += f" ({entry['name']})"
            if entry["name"] in names:
                problems.append(f"{label}: duplicate name {entry['name']!r}")
                continue
            names.add(entry["name"])
        kind = entry.get("kind")
        if kind not in registry:
            problems.append(f"{label}: kind {kind!r} is not one of {', '.join(sorted(registry))}")
            continue
        renamed = [k for k in entry if k in RENAMED]
        if renamed:
            for old in renamed:
                new, was = RENAMED[old], entry[old]
                unit = "d" if old.endswith("_days") else "s"
                example = f"{was}{unit}" if isinstance(was, int | float) and not isinstance(was, bool) else "90s"
                problems.append(f"{label}: {old}: renamed to {new}, with a unit (e.g. {new}: {example})")
            continue
        inline = sorted(k for k in entry if str(k).lower() in INLINE_SECRET_KEYS)
        if inline:
            problems.append(
                f"{label}: {', '.join(inline)}: credentials are not written in the file; "
                "name an environment variable instead (token_env: MY_TOKEN)"
            )
            continue
        try:
            config = registry[kind].model.model_validate(entry, context={"file": True})
        except ValidationError as exc:
            for error in exc.errors():
                problems.append(f"{label}: {_where(error['loc'])}: {error['msg'].removeprefix('Value error, ')}")
            continue
        configs.append(config)
    if not configs and not problems:
        problems.append(f"{origin}: the sources list is empty")
    if problems:
        raise SourcesFileError(problems)
    return configs


@dataclass
class SourcesFile:
    """A validated sources file."""

    path: Path
    sources: list[SourceConfig]
    brands: Path | None = None

    def select(self, only: str | None) -> list[SourceConfig]:
        """All entries, or the one called ``only`` (a `SourcesFileError` naming the known ones otherwise)."""
        if only is None:
            return list(self.sources)
        chosen = [s for s in self.sources if s.name == only]
        if not chosen:
            known = ", ".join(s.name for s in self.sources)
            raise SourcesFileError([f"{self.path}: no source named {only!r} (names: {known})"])
        return chosen

    def build(self, settings: Settings, only: str | None = None) -> list[Connector]:
        """The connectors of the selected entries; every entry that cannot be built is one problem line."""
        ctx = BuildContext(settings, base_dir=self.path.parent, brands_path=self.brands)
        connectors: list[Connector] = []
        problems: list[str] = []
        registry = kinds()
        for config in self.select(only):
            try:
                connector = registry[config.kind].build(config, ctx)
            except SourcesFileError as exc:
                problems.extend(exc.problems)
                continue
            except (ValueError, TypeError) as exc:
                problems.append(f"{config.name} ({config.kind}): {exc}")
                continue
            connectors.append(connector)
        if problems:
            raise SourcesFileError(problems)
        return connectors


def load_sources(path: Path) -> SourcesFile:
    """Read and validate a sources YAML file."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SourcesFileError([f"cannot read sources file {path}: {exc.strerror or exc}"]) from None
    except yaml.YAMLError as exc:
        first = str(exc).replace("\n", " ")
        raise SourcesFileError([f"{path}: not valid YAML: {first}"]) from None
    sources = parse_sources(data, str(path))
    brands = data.get("brands")
    brands_path = None
    if brands is not None:
        brands_path = Path(str(brands)).expanduser()
        if not brands_path.is_absolute():
            brands_path = Path(path).parent / brands_path
    return SourcesFile(Path(path), sources, brands_path)


# --- the generic connectors as kinds --------------------------------------------------------------------------
class RssSource(SourceConfig):
    """``kind: rss``: one RSS/Atom feed."""

    url: str
    interval: Duration = Field(60.0, gt=0)
    source: str = "news"


class SseSource(SourceConfig):
    """``kind: sse``: a Server-Sent Events stream with a mapping file."""

    url: str
    mapping: str
    source: str | None = None
    events: list[str] | None = None
    headers: dict[str, str] = Field(default_factory=dict, description="${VAR} is read from the environment.")


class WebSocketSource(SourceConfig):
    """``kind: websocket``: a WebSocket stream with a mapping file."""

    url: str
    mapping: str
    source: str | None = None
    subscribe: list[Any] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)
    heartbeat: Duration = Field(30.0, gt=0)


class PollSource(SourceConfig):
    """``kind: poll``: a JSON API polled with a mapping file."""

    url: str
    mapping: str
    source: str | None = None
    interval: Duration = Field(60.0, gt=0)
    params: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)


class WebhookSource(SourceConfig):
    """``kind: webhook``: the push receiver (HMAC secret and/or bearer token from the environment)."""

    host: str | None = None
    port: int | None = Field(None, ge=0, le=65535)
    secret_env: str | None = None
    token_env: str | None = None
    sources: list[str] | None = None
    mappings: dict[str, str] = Field(default_factory=dict, description="source name -> mapping file")


class ReplaySource(SourceConfig):
    """``kind: replay``: one JSONL/CSV file (``.gz`` too), oldest first, resumable from its checkpoint."""

    path: str = Field(description="The file, relative to the sources file.")
    speed: float = Field(0.0, ge=0, description="Event time per wall time: 60 = an hour a minute; 0 = at once.")
    reorder_window: int | None = Field(
        DEFAULT_REORDER_WINDOW, ge=1, description="Records held to send a file out of order sorted; null: all."
    )
    checkpoint_records: int = Field(5000, ge=1, description="Checkpoint the position every this many records.")


def _expand(values: dict[str, str]) -> dict[str, str]:
    from crisiswatch.connectors.poll import expand_env

    return {k: expand_env(v) for k, v in values.items()}


@source_kind("rss", RssSource)
def _build_rss(config: RssSource, ctx: BuildContext) -> Connector:
    from crisiswatch.connectors.rss import FeedConnector

    return FeedConnector(
        config.url, source=config.source, interval=config.interval, state=ctx.state(config), **ctx.http()
    )


@source_kind("sse", SseSource)
def _build_sse(config: SseSource, ctx: BuildContext) -> Connector:
    from crisiswatch.connectors.sse import SseConnector

    mapping = ctx.mapping(config, config.mapping, config.source)
    headers = _expand({**(mapping.extra.get("headers") or {}), **config.headers})
    events = set(config.events or mapping.extra.get("events") or []) or None
    return SseConnector(config.url, mapping, headers=headers, events=events, state=ctx.state(config), **ctx.http())


@source_kind("websocket", WebSocketSource)
def _build_websocket(config: WebSocketSource, ctx: BuildContext) -> Connector:
    from crisiswatch.connectors.websocket import WebSocketConnector

    mapping = ctx.mapping(config, config.mapping, config.source)
    headers = _expand({**(mapping.extra.get("headers") or {}), **config.headers})
    subscribe = [*(mapping.extra.get("subscribe") or []), *config.subscribe]
    return WebSocketConnector(
        config.url, mapping, subscribe=subscribe, headers=headers, heartbeat=config.heartbeat, **ctx.http()
    )


@source_kind("poll", PollSource)
def _build_poll(config: PollSource, ctx: BuildContext) -> Connector:
    from crisiswatch.connectors.poll import JsonApiPoller

    mapping = ctx.mapping(config, config.mapping, config.source)
    return JsonApiPoller(
        config.url,
        mapping,
        params=config.params,
        headers=config.headers,
        interval=config.interval,
        state=ctx.state(config),
        **ctx.http(),
    )


@source_kind("replay", ReplaySource)
def _build_replay(config: ReplaySource, ctx: BuildContext) -> Connector:
    from crisiswatch.connectors.replay import ReplayConnector

    path = ctx.path(config.path)
    if not path.is_file():
        raise SourcesFileError([f"{config.name} (replay): path: file not found: {path}"])
    return ReplayConnector(
        path,
        speed=config.speed,
        state=ctx.state(config),
        reorder_window=config.reorder_window,
        save_every=config.checkpoint_records,
    )


@source_kind("webhook", WebhookSource)
def _build_webhook(config: WebhookSource, ctx: BuildContext) -> Connector:
    from crisiswatch.connectors.webhook import WebhookReceiver

    settings = ctx.settings
    secret = ctx.secret(config, config.secret_env) if config.secret_env else None
    token = ctx.secret(config, config.token_env) if config.token_env else None
    if secret is None and settings.connectors.connector_webhook_secret is not None:
        secret = settings.connectors.connector_webhook_secret.get_secret_value()
    if token is None and settings.connectors.connector_webhook_token is not None:
        token = settings.connectors.connector_webhook_token.get_secret_value()
    if secret is None and token is None:
        raise SourcesFileError([f"{config.name} (webhook): name secret_env or token_env (HMAC secret / bearer token)"])
    return WebhookReceiver(
        secret=secret.encode() if secret else None,
        token=token,
        host=config.host or settings.connectors.connector_webhook_host,
        port=settings.connectors.connector_webhook_port if config.port is None else config.port,
        max_bytes=settings.connectors.connector_webhook_max_bytes,
        sources=config.sources,
        mappings={src: ctx.mapping(config, file, src) for src, file in config.mappings.items()},
    )
