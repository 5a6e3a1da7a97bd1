"""The one typed settings object, in sections: environment variables, then an optional YAML file, then defaults.

`Settings` holds one section per concern: `kafka` (`KafkaSettings`), `worker` (`WorkerSettings`), `risk`
(`RiskSettings`), `control` (`ControlSettings`), `alerts` (`AlertSettings`), `web` (`WebSettings`) and
`connectors` (`ConnectorSettings`). A part of crisiswatch takes only the sections it needs: a publishing
gate, for example, is built from ``kafka`` and ``control`` alone (no SMTP, Slack or page users).

The environment names are flat and unchanged: ``CRISISWATCH_<FIELD>`` (``CRISISWATCH_WINDOW_SECONDS=30``
sets ``settings.worker.window_seconds``), except the Kafka bootstrap servers, which also answer to the
conventional ``KAFKA_BOOTSTRAP_SERVERS``. A YAML file named by ``CRISISWATCH_CONFIG`` supplies anything
the environment does not, with the same flat keys (``window_seconds: 30``) or by section
(``worker: {window_seconds: 30}``). ``Settings(window_seconds=30)`` and
``settings.model_copy(update={"window_seconds": 30})`` route flat names to their section too. Secrets
are ``SecretStr`` so that they never appear in a repr or a log line.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from crisiswatch.contracts.vocabulary import Severity

if TYPE_CHECKING:  # the risk code (scipy) loads only when a policy is built: gates do not need it
    from crisiswatch.detectors.risk import RiskPolicy

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_BRANDS_FILE = PACKAGE_DIR / "data" / "brands.yaml"


class Section(BaseSettings):
    """One section of the settings. Built alone (``ControlSettings()``), it reads its own fields from the
    environment; inside `Settings` it is filled from the environment and the file by `Settings`."""

    model_config = SettingsConfigDict(
        env_prefix="CRISISWATCH_",
        extra="ignore",
        populate_by_name=True,
        # A model-level error would otherwise print every input, secrets included, in its message.
        hide_input_in_errors=True,
    )


class KafkaSettings(Section):
    """The cluster, topic names and the security of every Kafka client."""

    bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "CRISISWATCH_BOOTSTRAP_SERVERS"),
        description="Kafka cluster to use. Unset: an embedded broker is launched on loopback.",
    )
    topic_prefix: str = Field("", description="Prefix for every topic name, to share a cluster.")
    app_id: str = Field("crisiswatch", description="Faust application id (consumer group prefix).")
    rehearsal_prefix: str | None = Field(
        default=None,
        description="Topic prefix of `crisiswatch run` rehearsals (without --live). Unset: rehearsal-<random id>.",
    )
    partitions: int = Field(4, ge=1, description="Partitions of the data topics.")
    replication_factor: int = Field(1, ge=1)
    # Security of every Kafka client (built in one place: `crisiswatch.kafka.client_options`).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How clients talk to the cluster: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism (with SASL_PLAINTEXT or SASL_SSL)."
    )
    kafka_sasl_username: str | None = Field(default=None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SASL password (secret).")
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="CA bundle that signed the brokers' certificates (unset: the system CAs)."
    )
    kafka_ssl_certfile: Path | None = Field(default=None, description="Client certificate (PEM), for mutual TLS.")
    kafka_ssl_keyfile: Path | None = Field(default=None, description="Private key of the client certificate (PEM).")

    @field_validator("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
    @classmethod
    def _check_ssl_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"CRISISWATCH_{str(info.field_name).upper()}: no such file: {value}")
        return value

    @model_validator(mode="after")
    def _check_kafka_security(self) -> KafkaSettings:
        protocol = self.kafka_security_protocol
        sasl = protocol.startswith("SASL_")
        tls = protocol in ("SSL", "SASL_SSL")
        if sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(
                f"CRISISWATCH_KAFKA_SECURITY_PROTOCOL={protocol} needs CRISISWATCH_KAFKA_SASL_USERNAME "
                "and CRISISWATCH_KAFKA_SASL_PASSWORD"
            )
        # Settings that the protocol would silently ignore are a mistake: refuse them rather than run unprotected.
        if not sasl and (self.kafka_sasl_username or self.kafka_sasl_password):
            raise ValueError(
                f"CRISISWATCH_KAFKA_SASL_USERNAME/_PASSWORD are set but CRISISWATCH_KAFKA_SECURITY_PROTOCOL={protocol} "
                "does not use SASL (use SASL_SSL or SASL_PLAINTEXT)"
            )
        if not tls and (self.kafka_ssl_cafile or self.kafka_ssl_certfile or self.kafka_ssl_keyfile):
            raise ValueError(
                f"CRISISWATCH_KAFKA_SSL_* files are set but CRISISWATCH_KAFKA_SECURITY_PROTOCOL={protocol} "
                "does not use TLS (use SSL or SASL_SSL)"
            )
        if self.kafka_ssl_keyfile and not self.kafka_ssl_certfile:
            raise ValueError("CRISISWATCH_KAFKA_SSL_KEYFILE needs CRISISWATCH_KAFKA_SSL_CERTFILE (the certificate)")
        if protocol != "PLAINTEXT" and not self.bootstrap_servers:
            raise ValueError(
                f"CRISISWATCH_KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_BOOTSTRAP_SERVERS "
                "(the embedded broker speaks PLAINTEXT only)"
            )
        return self

    def topic(self, name: str) -> str:
        """Full topic name for a logical topic name (applies ``topic_prefix``)."""
        return f"{self.topic_prefix}{name}"


class WorkerSettings(Section):
    """The stream worker: records and dead letters, batches, de-duplication, windows and their closing."""

    max_record_bytes: int = Field(256 * 1024, description="Raw records larger than this go to the DLQ.")
    record_max_age_days: float = Field(
        20 * 365.0, gt=0, description="Mentions whose created_at is older than this go to the DLQ (stale_timestamp)."
    )
    record_max_future_seconds: float = Field(
        300.0, ge=0, description="Mentions whose created_at is further ahead of now go to the DLQ (future_timestamp)."
    )
    dead_letter_max_bytes: int = Field(
        512 * 1024, ge=16384, description="A dead letter's original bytes are truncated to keep it under this size."
    )
    dead_letter_log_seconds: float = Field(
        10.0, ge=0, description="At most one dead-letter WARNING per reason this often (the rest are counted)."
    )
    log_level: str = Field("warn", description="Worker log level: warn, info or debug.")

    batch_size: int = Field(2000, ge=1, description="Max records a stage processes at once.")
    batch_seconds: float = Field(0.05, gt=0, description="Max wait to fill a batch.")
    dedupe_ttl_seconds: float = Field(3600.0, gt=0)
    dedupe_max_ids: int = Field(500_000, ge=1000)
    dedupe_rewarm_records: int = Field(
        20_000, ge=0, description="On start, re-learn the ids of this many recent records per enriched partition."
    )
    window_seconds: int = Field(60, ge=1, description="Event-time tumbling window length.")
    allowed_lateness_seconds: int = Field(30, ge=0, description="Late mentions within this still count.")
    idle_flush_seconds: float = Field(
        5.0, gt=0, description="With no new data for this long, event time advances with the wall clock."
    )
    state_checkpoint_seconds: float = Field(
        5.0, gt=0, description="How often window state is written to the state topic (a restart replays since)."
    )
    source_lateness: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict,
        description="Allowed lateness per source or source kind (the mention's `source`, or its part before ':'), "
        "seconds, over the built-in defaults (`stream.windowing.DEFAULT_SOURCE_LATENESS`); others: "
        "allowed_lateness_seconds.",
    )
    source_idle_seconds: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict,
        description="Silence after which a source stops holding its brands' windows open, per source or kind, over "
        "the built-in defaults (`stream.windowing.DEFAULT_SOURCE_IDLE`); others: source_idle_default_seconds.",
    )
    source_idle_default_seconds: float = Field(
        60.0, gt=0, description="Idle limit of a source not named in source_idle_seconds."
    )
    upstream_idle_factor: float = Field(
        3.0,
        gt=0,
        description="A silent upstream raw partition stops holding the watermark after this many "
        "idle_flush_seconds (raw partitions are read in chunks during a backlog).",
    )
    max_window_hold_seconds: float | None = Field(
        None,
        gt=0,
        description="Cap on how long a slow source (a polled feed) may hold a brand's windows behind the upstream "
        "watermark; later mentions become corrections carried into the next decision. Unset: each source's "
        "own lateness (a brand fed by RSS is decided up to 10 minutes after the fact).",
    )
    correction_horizon_seconds: float = Field(
        86400.0,
        ge=0,
        description="A mention this much older than its brand's closing point goes to the DLQ (too_late) instead "
        "of into a correction signal of its window.",
    )
    brands_file: Path = Field(DEFAULT_BRANDS_FILE)
    language_backend: str = Field("fast", description="'fast' (default batch path) or 'langdetect'.")


class RiskSettings(Section):
    """The global risk and pause policy (`policy`); each brand may refine it in the brands file."""

    pause_severity: str = Field("critical", description="Lowest severity that pauses publishing.")
    pause_scope: Literal["brand", "global", "none"] = Field(
        "brand",
        description="What an automatic pause stops: 'brand' (the brand's own scope, default), 'global', or "
        "'none' (never pause automatically). The brands file may set it per brand.",
    )
    min_mentions_to_pause: int = Field(20, ge=0)
    min_sources_to_pause: int = Field(1, ge=0)
    risk_policy: dict[str, Any] = Field(
        default_factory=dict,
        description="Any other `detectors.risk.RiskPolicy` field, e.g. {'warning_at': 35, 'cooldown_seconds': 3600}.",
    )

    @field_validator("risk_policy")
    @classmethod
    def _check_risk_policy(cls, value: dict[str, Any]) -> dict[str, Any]:
        from crisiswatch.detectors.risk import RiskPolicy

        RiskPolicy.from_fields(value)  # unknown fields and bad values fail here, at start-up
        return value

    def policy(self, overrides: dict[str, Any] | None = None) -> RiskPolicy:
        """The global `RiskPolicy`: the four named fields, then ``risk_policy``, then ``overrides`` (e.g. a
        backtest's policy file). This is the one place the settings become a policy."""
        from crisiswatch.detectors.risk import RiskPolicy

        named = {
            "pause_severity": self.pause_severity,
            "pause_scope": self.pause_scope,
            "min_mentions_to_pause": self.min_mentions_to_pause,
            "min_sources_to_pause": self.min_sources_to_pause,
        }
        return RiskPolicy.from_fields({**named, **self.risk_policy, **(overrides or {})})


class ControlSettings(Section):
    """The publishing control plane: keys, freshness rules of gates, held posts, the relay."""

    control_keys: SecretStr | None = Field(
        default=None,
        description="Private signing keys of writers, 'kid:ed25519:<base64>[,...]' (`crisiswatch keys generate`); "
        "the first signs. Legacy HMAC 'kid:secret' only with control_hmac_migration.",
    )
    control_public_keys: str | None = Field(
        default=None,
        description="Ed25519 public keys 'kid:ed25519:<base64>[,...]' that readers (gates) verify with.",
    )
    control_hmac_migration: bool = Field(
        False, description="Migration period only: also sign/accept legacy HMAC keys of control_keys."
    )
    control_max_age_seconds: float = Field(
        300.0, gt=0, description="A resume signed longer than this before it reached the log is refused as late."
    )
    control_heartbeat_max_age_seconds: float = Field(
        30.0, gt=0, description="Gates fail closed when the newest signed state heartbeat is older than this."
    )
    gate_max_staleness_seconds: float = Field(30.0, gt=0)
    control_default_on_resume: Literal["hold", "skip", "review"] = Field(
        "review", description="What happens to posts due during a pause, unless the pause says otherwise."
    )
    control_reassert_seconds: float = Field(
        10.0, gt=0, description="State heartbeat period: a writer re-signs every scope's state this often."
    )
    backlog_release_per_second: float = Field(1.0, gt=0, description="Rate of releasing held posts.")
    gate_held_report_seconds: float = Field(
        10.0, ge=0, description="How often a gate reports its held-post counts to publishing.held (0: never)."
    )
    held_report_max_age_seconds: float = Field(
        180.0, gt=0, description="Held-post reports older than this are left out of the counts (stale gate)."
    )
    relay_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Webhook URLs told about every pause/resume (comma-separated)."
    )
    relay_max_attempts: int = Field(10, ge=1, description="Delivery attempts per change and URL.")
    control_require_reason: bool = Field(True, description="Pause and resume (page, API, CLI) need a reason.")

    @field_validator("relay_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value


class AlertSettings(Section):
    """Alert delivery (`crisiswatch alerts`): routing, retries, reminders and the channels."""

    alert_min_severity: Severity = Field("warning", description="Lowest alert severity that is delivered to people.")
    alert_cooldown_seconds: float = Field(
        900.0, ge=0, description="A brand's new episode this soon after the last one resolved is not re-sent."
    )
    alert_max_age_seconds: float = Field(
        3600.0, gt=0, description="Alert records older than this are never delivered (restart, first start)."
    )
    alert_retry_attempts: int = Field(6, ge=1, description="Delivery attempts per notification and channel.")
    alert_retry_backoff_seconds: float = Field(1.0, gt=0, description="First retry delay; doubles each time.")
    alert_retry_max_backoff_seconds: float = Field(60.0, gt=0)
    alert_timeout_seconds: float = Field(10.0, gt=0, description="Timeout of one delivery attempt.")
    alert_remind_minutes: float = Field(
        0.0, ge=0, description="Re-send a critical alert nobody acknowledged every this many minutes (0: off)."
    )
    alert_escalate_minutes: float = Field(
        0.0, ge=0, description="Send an unacknowledged critical alert to the escalation route after this (0: off)."
    )
    alert_escalation_channels: str | None = Field(
        default=None, description="Channel names that form the escalation route only, e.g. 'email' (comma-separated)."
    )
    alert_escalation_webhook_url: SecretStr | None = Field(
        default=None, description="A JSON webhook (e.g. the on-call pager) on the escalation route, named 'escalation'."
    )
    alertmanager_urls: str | None = Field(
        default=None, description="Alertmanager base URLs, comma-separated (each gets every alert)."
    )
    alertmanager_resend_seconds: float = Field(60.0, gt=0, description="Re-post firing alerts this often.")
    slack_webhook_url: SecretStr | None = Field(default=None, description="Slack-compatible incoming webhook.")
    alert_webhook_url: SecretStr | None = Field(default=None, description="Generic JSON webhook URL.")
    alert_webhook_secret: SecretStr | None = Field(
        default=None, description="Signs generic webhook bodies (X-Crisiswatch-Signature, HMAC-SHA256)."
    )
    smtp_host: str | None = Field(default=None, description="SMTP server for e-mail alerts.")
    smtp_port: int = Field(587)
    smtp_starttls: bool = Field(True, description="Upgrade with STARTTLS (required when set).")
    smtp_ssl: bool = Field(False, description="Implicit TLS (SMTPS, usually port 465).")
    smtp_username: str | None = Field(default=None)
    smtp_password: SecretStr | None = Field(default=None)
    smtp_ca_file: Path | None = Field(default=None, description="CA bundle to trust for the SMTP server's TLS.")
    alert_email_from: str = Field("crisiswatch@localhost")
    alert_email_to: str | None = Field(default=None, description="Recipients, comma-separated.")


class WebSettings(Section):
    """The page and its HTTP API: addresses, users and roles, sessions, origins, rate limits."""

    public_url: str | None = Field(
        default=None, description="Where people open the page (links in alerts); default http://web_host:page_port/."
    )

    web_host: str = Field("127.0.0.1")
    web_port: int = Field(6066, description="Each worker's /metrics and /healthz.")
    page_port: int = Field(8066, description="The page and HTTP API of `crisiswatch serve`.")
    api_token: SecretStr | None = Field(default=None, description="Bearer token for the HTTP API.")
    api_token_actor: str = Field("api", description="Actor recorded for changes made with the bearer token.")
    api_token_role: Literal["viewer", "operator", "admin"] = Field(
        "operator", description="Role of the bearer token (viewer, operator or admin)."
    )
    web_users: SecretStr | None = Field(
        default=None,
        description="Page/API users as 'alice:<argon2 hash>,bob:<argon2 hash>' (`crisiswatch users hash`); basic "
        "auth and login.",
    )
    web_allow_plaintext_passwords: bool = Field(
        False, description="DEPRECATED, migration only: accept plain-text passwords in web_users (warns loudly)."
    )
    web_roles: str | None = Field(
        default=None, description="Role per user, 'alice:admin,bob:operator,carol:viewer' (users and SSO names)."
    )
    web_default_role: Literal["none", "viewer", "operator", "admin"] = Field(
        "viewer", description="Role of a signed-in user not named in web_roles ('none': refused)."
    )
    web_trusted_proxies: str | None = Field(
        default=None,
        description="SSO: addresses/CIDRs of reverse proxies whose identity headers are trusted, comma-separated.",
    )
    web_proxy_user_header: str = Field("X-Forwarded-User", description="SSO: header naming the signed-in user.")
    web_proxy_role_header: str | None = Field(
        default=None, description="SSO: header with the user's role or groups (e.g. X-Forwarded-Groups); unset: roles."
    )
    web_operator_pause_global: bool = Field(
        True, description="Operators may pause global (the emergency stop); false: admins only."
    )
    web_resume_approval: bool = Field(
        False, description="Two-person resume of global: an operator asks, another operator or an admin approves."
    )
    web_resume_approval_seconds: float = Field(
        900.0, gt=0, description="How long a two-person resume request waits for its approval."
    )
    web_session_seconds: float = Field(8 * 3600.0, gt=0, description="Lifetime of a login session.")
    web_cookie_secure: bool = Field(False, description="Mark the session cookie Secure (set it behind TLS).")
    web_allowed_origins: str | None = Field(
        default=None,
        description="Origins (scheme://host[:port]) allowed to log in and send changes, comma-separated; unset: "
        "the server's own http://host:port, localhost and 127.0.0.1 on its port. PUBLIC_URL's origin is always "
        "allowed; the Host header never is.",
    )
    web_rate_limit_per_minute: int = Field(20, ge=1, description="Control requests per user (or IP) per minute.")


class ConnectorSettings(Section):
    """Connectors (`crisiswatch connect …`): HTTP behaviour, the webhook, delivery, spool and checkpoints."""

    connector_state_dir: Path | None = Field(
        default=None,
        description=(
            "Folder of connector checkpoint files: used with CRISISWATCH_CONNECTOR_CHECKPOINTS=file, and read once "
            "as the starting point of a connector that has no checkpoint in Kafka yet (migration). Unset: no files; "
            "checkpoints live in the connectors.checkpoints topic (the default)."
        ),
    )
    connector_timeout_seconds: float = Field(30.0, gt=0, description="Connect/read timeout of one request.")
    connector_backoff_initial_seconds: float = Field(1.0, gt=0, description="First retry delay after an error.")
    connector_backoff_max_seconds: float = Field(300.0, gt=0, description="Longest retry delay (jittered, doubling).")
    connector_user_agent: str = Field("crisiswatch-connector/0.1", description="User-Agent of outgoing requests.")
    connector_webhook_host: str = Field("127.0.0.1", description="Listen address of `crisiswatch connect webhook`.")
    connector_webhook_port: int = Field(8090, ge=0)
    connector_webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key of X-Crisiswatch-Signature on pushed webhooks."
    )
    connector_webhook_token: SecretStr | None = Field(
        default=None, description="Bearer token accepted on pushed webhooks (alternative to the signature)."
    )
    connector_webhook_max_bytes: int = Field(1 << 20, ge=1024, description="Largest accepted webhook body.")
    connector_buffer_records: int = Field(
        20_000, ge=1, description="Records a connector holds in memory before sends block or spill to the spool."
    )
    connector_spool_dir: Path | None = Field(None, description="On-disk spool for broker outages; unset: memory only.")
    connector_spool_max_bytes: int = Field(1 << 30, ge=1 << 20, description="Largest spool; when full, sends block.")
    connector_spool_max_age_seconds: float = Field(
        86_400.0, gt=0, description="Spooled records older than this are reported (metric, ERROR line), not sent."
    )
    connector_spill_after_seconds: float = Field(
        2.0, gt=0, description="No acknowledgement for this long: the broker counts as down, records go to the spool."
    )
    connector_enable_idempotence: bool = Field(
        False, description="Idempotent producer for connectors (real Kafka; the embedded broker has none)."
    )
    connector_checkpoints: Literal["kafka", "file", "memory"] = Field(
        "kafka",
        description="Where connectors keep checkpoints: the connectors.checkpoints topic, JSON files in "
        "CRISISWATCH_CONNECTOR_STATE_DIR, or nowhere.",
    )
    connector_webhook_sources: str | None = Field(
        default=None, description="Allowed {source} names of POST /webhooks/{source}, comma-separated (unset: any)."
    )


SECTIONS: dict[str, type[Section]] = {
    "kafka": KafkaSettings,
    "worker": WorkerSettings,
    "risk": RiskSettings,
    "control": ControlSettings,
    "alerts": AlertSettings,
    "web": WebSettings,
    "connectors": ConnectorSettings,
}
"""Section name (the attribute of `Settings`) -> its model."""

FIELD_SECTION: dict[str, str] = {field: name for name, model in SECTIONS.items() for field in model.model_fields}
"""Every flat field name -> the section that holds it."""


def route(values: dict[str, Any]) -> dict[str, Any]:
    """Flat field names sorted into their sections (section dicts given as such merge with them)."""
    routed: dict[str, Any] = {}
    for key, value in values.items():
        section = FIELD_SECTION.get(key)
        if section is None:
            if key in SECTIONS and isinstance(routed.get(key), dict):
                value = {**_as_dict(value), **routed[key]}
            routed[key] = value
            continue
        current = routed.setdefault(section, {})
        if not isinstance(current, dict):
            current = routed[section] = _as_dict(current)
        current[key] = value
    return routed


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {k: getattr(value, k) for k in type(value).model_fields}


class _SectionedEnvironment(PydanticBaseSettingsSource):
    """``CRISISWATCH_<FIELD>`` environment variables, read per section (so the names stay flat)."""

    def __init__(self, settings_cls: type[BaseSettings]):
        super().__init__(settings_cls)
        self.sources = {name: EnvSettingsSource(model) for name, model in SECTIONS.items()}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False  # unused: __call__ reads whole sections

    def __call__(self) -> dict[str, Any]:
        return {name: source() for name, source in self.sources.items()}


class _SettingsFile(PydanticBaseSettingsSource):
    """The YAML file named by ``CRISISWATCH_CONFIG``: flat keys, or one mapping per section."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path):
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {}
        data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"CRISISWATCH_CONFIG={self.path}: expected a mapping of settings")
        return route(data)


class Settings(BaseSettings):
    """All configuration of a crisiswatch process (worker, connectors, CLI, gate), in sections."""

    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    kafka: KafkaSettings = Field(default_factory=lambda: KafkaSettings.model_validate({}))
    worker: WorkerSettings = Field(default_factory=lambda: WorkerSettings.model_validate({}))
    risk: RiskSettings = Field(default_factory=lambda: RiskSettings.model_validate({}))
    control: ControlSettings = Field(default_factory=lambda: ControlSettings.model_validate({}))
    alerts: AlertSettings = Field(default_factory=lambda: AlertSettings.model_validate({}))
    web: WebSettings = Field(default_factory=lambda: WebSettings.model_validate({}))
    connectors: ConnectorSettings = Field(default_factory=lambda: ConnectorSettings.model_validate({}))

    def __init__(self, **values: Any) -> None:
        super().__init__(**route(values))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, _SectionedEnvironment(settings_cls)]
        config_file = os.environ.get("CRISISWATCH_CONFIG")
        if config_file:
            sources.append(_SettingsFile(settings_cls, Path(config_file)))
        return tuple(sources)

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Settings:
        """A copy with ``update`` applied; flat field names update their section (a copy of it)."""
        copy = super().model_copy(deep=deep)
        for name, values in route(update or {}).items():
            if name in SECTIONS and isinstance(values, dict):
                values = getattr(copy, name).model_copy(update=values)
            setattr(copy, name, values)
        return copy

    @classmethod
    def fields(cls) -> dict[str, tuple[str, Any]]:
        """Every setting: flat name -> (section, its pydantic ``FieldInfo``)."""
        return {field: (name, SECTIONS[name].model_fields[field]) for field, name in FIELD_SECTION.items()}

    def topic(self, name: str) -> str:
        """Full topic name for a logical topic name (applies ``kafka.topic_prefix``)."""
        return self.kafka.topic(name)


@lru_cache(maxsize=1)
def get_settings(**overrides: Any) -> Settings:
    """The process-wide settings (cached; tests build their own ``Settings``)."""
    return Settings(**overrides)
