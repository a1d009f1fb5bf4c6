"""One settings object for every process (worker, API, CLI, client).

Every number an operator may tune is a setting whose default is the seed's
(`emailConcurrency` 5, `pushConcurrency` 10, `maxRetries` 5, `baseDelay` 2000 ms,
`maxDelay` 300000 ms, 30 % jitter). Values come from the environment and an
optional `.env` file; the seed's camelCase names are accepted as aliases so an
existing deployment's environment keeps working.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from notifications.types import DeliveryPolicy

EMAIL_TASK_QUEUE = "notification-email"
PUSH_TASK_QUEUE = "notification-push"


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


WORKER_QUEUE_NAMES = ("email", "push", "campaign", "maintenance")
_EMAIL_PROVIDERS = ("outbox", "resend", "smtp")
_PUSH_PROVIDERS = ("outbox", "fcm")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True)

    env: Literal["development", "production"] = Field(
        "development", validation_alias=_alias("ENV", "NOTIFICATIONS_ENV")
    )

    # --- Temporal -------------------------------------------------------------
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233
    temporal_ui_url: str | None = Field(
        None, description="the Temporal Web UI the dashboard links to; default http://<Temporal host>:TEMPORAL_UI_PORT"
    )
    temporal_http_port: int = Field(7243, description="HTTP API port of the dev server `notifications dev` starts")
    temporal_metrics_port: int = Field(7253, description="metrics port of that dev server")
    temporal_dev_db: str = Field("", description="SQLite file of the dev server; default .data/temporal.db")

    # --- SQL --------------------------------------------------------------------
    data_dir: Path = Path(".data")
    database_url: str = ""

    # --- Worker (the seed's workerConfig) --------------------------------------
    email_concurrency: int = Field(5, ge=1, validation_alias=_alias("EMAIL_CONCURRENCY", "emailConcurrency"))
    push_concurrency: int = Field(10, ge=1, validation_alias=_alias("PUSH_CONCURRENCY", "pushConcurrency"))
    max_retries: int = Field(5, ge=1, validation_alias=_alias("MAX_RETRIES", "maxRetries"))
    base_delay_ms: int = Field(2000, ge=1, validation_alias=_alias("BASE_DELAY_MS", "BASE_DELAY", "baseDelay"))
    max_delay_ms: int = Field(300_000, ge=1, validation_alias=_alias("MAX_DELAY_MS", "MAX_DELAY", "maxDelay"))
    jitter_ratio: float = Field(0.3, ge=0, le=1, validation_alias=_alias("JITTER_RATIO", "jitter"))
    send_timeout_seconds: float = Field(30.0, gt=0, description="start-to-close timeout of one send attempt")
    graceful_shutdown_seconds: float = Field(30.0, ge=0, description="grace period for in-flight sends")
    queue_pause_recheck_seconds: float = Field(
        900.0, gt=0, description="last-resort re-check of a paused queue by a held notification"
    )
    visibility_lag_seconds: float = Field(
        1.5, ge=0, description="a resume signals, this much later, the running notifications it could not list yet"
    )
    workflow_cache_size: int = Field(
        200, ge=0, description="workflows kept in worker memory per task queue (bounds memory under a backlog)"
    )
    mirror_retry_max_seconds: float = Field(30.0, gt=0, description="cap of the SQL-mirror retry backoff")
    # --- Campaigns ---------------------------------------------------------------
    campaign_batch_size: int = Field(500, ge=1, le=5000, description="recipients one campaign batch activity claims")
    campaign_max_in_flight: int = Field(4, ge=1, le=64, description="batches one campaign keeps running at once")
    campaign_concurrency: int = Field(4, ge=1, description="campaign batches one worker runs at once")
    worker_queues: str = Field(
        "all", description="what a worker process polls: all, or some of email,push,campaign,maintenance"
    )
    campaign_batches_per_run: int = Field(
        500, ge=1, le=2000, description="batches of a campaign workflow's run before it continues as new"
    )
    default_priority: int = Field(5, ge=1, le=10)
    max_schedule_days: int = Field(365, ge=1, description="how far ahead a sendAt may be")
    query_timeout_seconds: float = Field(5.0, gt=0, description="wait for a live `status` query before using SQL")
    enqueue_linger_ms: float = Field(
        10.0, ge=0, le=1000, description="PostgreSQL: how long a new row waits for others in flight to share its INSERT"
    )

    # --- Logs and metrics -------------------------------------------------------
    log_level: str = "INFO"
    log_format: Literal["auto", "text", "json"] = Field("auto", description="auto: json in production")
    log_file: Path | None = Path("logs/notifications.log")
    metrics_bind: str = Field("127.0.0.1:9464", description="worker Prometheus endpoint; empty disables")

    codec_cors_origins: list[str] = Field(
        ["http://localhost:8233", "http://127.0.0.1:8233"],
        description="origins (the Temporal Web UI) allowed to call the codec endpoints from a browser",
    )

    # --- Retention of SQL records: the seed's removeOnComplete / removeOnFail ------
    retention_sent_days: float = Field(7.0, gt=0, description="sent notifications and their logs are kept this long")
    retention_failed_days: float = Field(30.0, gt=0, description="failed and cancelled ones, this long")
    retention_interval_minutes: float = Field(60.0, gt=0, description="how often the purge Schedule runs")

    # --- Encryption of Temporal payloads -------------------------------------------
    encryption_keys: SecretStr | None = Field(
        None, description="<id>:<base64 key>[,...]; the first encrypts, all decrypt (rotation)"
    )

    # --- Providers ----------------------------------------------------------------
    email_provider: Literal["outbox", "resend", "smtp"] = "outbox"
    push_provider: Literal["outbox", "fcm"] = "outbox"
    email_providers: str = Field(
        "", description="email providers in failover order, e.g. resend,smtp; default EMAIL_PROVIDER alone"
    )
    push_providers: str = Field("", description="push providers in failover order; default PUSH_PROVIDER alone")
    failover_after_attempts: int = Field(
        2, ge=1, description="consecutive transient failures on one provider before a notification moves on"
    )
    failover_on_timeout: bool = Field(
        False, description="fail an email over after an ambiguous outcome too (it may then arrive twice)"
    )
    mail_from: str = Field("noreply@uzima.health", validation_alias=_alias("MAIL_FROM"))
    outbox_latency_ms: int = Field(0, ge=0, description="simulated provider latency of the development outbox")

    # --- providers -------------------------------------------------------
    resend_api_key: SecretStr | None = None
    resend_api_url: str = "https://api.resend.com"
    resend_webhook_secret: SecretStr | None = Field(
        None, description="whsec_... of the Resend webhook endpoint (POST /api/webhooks/resend)"
    )
    provider_timeout_seconds: float = Field(
        10.0, gt=0, description="bound of one provider call (HTTP or SMTP); keep below 0.9 x SEND_TIMEOUT_SECONDS"
    )
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls (port 587), tls (implicit TLS, port 465) or none (local relays only)"
    )
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_message_id_domain: str | None = Field(None, description="domain of Message-ID; default MAIL_FROM's")
    fcm_project_id: str | None = Field(
        None, validation_alias=_alias("FCM_PROJECT_ID", "FIREBASE_PROJECT_ID", "GOOGLE_CLOUD_PROJECT")
    )
    google_application_credentials: Path | None = Field(None, validation_alias=_alias("GOOGLE_APPLICATION_CREDENTIALS"))
    fcm_credentials_json: SecretStr | None = Field(
        None,
        validation_alias=_alias("FCM_CREDENTIALS_JSON", "FIREBASE_CREDENTIALS_JSON"),
        description="the service-account JSON itself, for platforms that inject secrets as variables",
    )
    fcm_api_url: str | None = Field(None, description="FCM endpoint base, e.g. a proxy or a local fake")
    circuit_failure_threshold: int = Field(5, ge=1, description="consecutive transient failures that open it")
    circuit_cooldown_seconds: float = Field(30.0, gt=0, description="how long an open circuit fails fast")
    circuit_shared_cache_seconds: float = Field(
        2.0, gt=0, description="how long a worker trusts its copy of the circuits other workers share"
    )
    templates_dir: Path | None = Field(None, description="operator templates, searched before the built-in ones")

    # --- Webhooks out ---------------------------------------------------------------
    webhook_retry_schedule: str = Field(
        "0,5,300,1800,7200,18000,36000,36000",
        description="seconds before each attempt of a webhook delivery; after the last it is failed",
    )
    webhook_timeout_seconds: float = Field(10.0, gt=0, description="an endpoint answering later counts as failed")
    webhook_concurrency: int = Field(16, ge=1, description="webhook deliveries in flight per dispatcher")
    webhook_allow_private: bool | None = Field(
        None, description="allow endpoint URLs on loopback/private/link-local addresses (default: development only)"
    )

    # --- API ---------------------------------------------------------------
    api_host: str = Field("127.0.0.1", validation_alias=_alias("API_HOST"))
    api_port: int = Field(8000, ge=1, le=65535, validation_alias=_alias("API_PORT"))
    jwt_secret: SecretStr | None = Field(None, description="HS256 signing secret of admin/service tokens")
    jwt_public_key: str | None = Field(
        None, description="PEM public key (or a path to one): tokens are then verified with RS256"
    )
    jwt_private_key: SecretStr | None = Field(
        None, description="PEM private key (or a path) used by `notifications token` to mint RS256 tokens"
    )
    jwt_issuer: str | None = Field(None, description="required `iss` claim, when set")
    jwt_audience: str | None = Field(None, description="required `aud` claim, when set")
    jwt_leeway_seconds: float = Field(0.0, ge=0, description="clock skew tolerated on `exp`")
    api_rate_limit: int = Field(30, ge=1, description="queue operations per token subject per window")
    api_rate_limit_window_seconds: float = Field(60.0, gt=0)
    api_max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024, description="larger request bodies get 413")
    api_worker_stale_seconds: float = Field(
        90.0,
        gt=0,
        description="a task-queue poller not seen for this long counts as gone; must exceed Temporal's "
        "long-poll interval (60 s by default), since an idle worker re-polls only that often",
    )
    worker_heartbeat_seconds: float = Field(
        5.0, gt=0, description="how often a worker process writes its heartbeat row (the task queues it polls)"
    )
    worker_heartbeat_stale_seconds: float = Field(
        15.0,
        gt=0,
        description="a worker whose heartbeat is older than this counts as gone; keep it a few heartbeats long",
    )
    api_check_timeout_seconds: float = Field(3.0, gt=0, description="timeout of each health-check probe")
    public_url: str = Field(
        "", description="where recipients reach the API (unsubscribe links); default http://API_HOST:API_PORT"
    )
    unsubscribe_secret: SecretStr | None = Field(
        None, description="signs one-click unsubscribe links; required in production, generated in development"
    )

    @field_validator("log_file", mode="before")
    @classmethod
    def _no_log_file(cls, value: object) -> object:
        return None if value in ("", "none", "off") else value

    @field_validator("email_providers", "push_providers")
    @classmethod
    def _provider_list(cls, value: str, info: ValidationInfo) -> str:
        known = _EMAIL_PROVIDERS if info.field_name == "email_providers" else _PUSH_PROVIDERS
        names = [part.strip() for part in value.split(",") if part.strip()]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown {', '.join(unknown)}; use some of {', '.join(known)} in failover order")
        if len(set(names)) != len(names):
            raise ValueError("names a provider twice")
        return ",".join(names)

    def provider_order(self, channel: str) -> list[str]:
        """The channel's providers in failover order: EMAIL_PROVIDERS / PUSH_PROVIDERS, or the one provider."""
        listed = self.email_providers if channel == "email" else self.push_providers
        single = self.email_provider if channel == "email" else self.push_provider
        return [n for n in listed.split(",") if n] or [single]

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        delays = [part.strip() for part in value.split(",") if part.strip()]
        if not delays or any(not d.replace(".", "", 1).isdigit() for d in delays):
            raise ValueError("must be comma-separated seconds, e.g. 0,5,300")
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    # Derived values -----------------------------------------------------------------
    def polled_queues(self) -> set[str]:
        """WORKER_QUEUES as names: email, push, campaign, maintenance."""
        names = {q.strip() for q in self.worker_queues.split(",") if q.strip()}
        return set(WORKER_QUEUE_NAMES) if not names or "all" in names else names

    @field_validator("worker_queues")
    @classmethod
    def _known_queues(cls, value: str) -> str:
        unknown = {q.strip() for q in value.split(",") if q.strip()} - {"all", *WORKER_QUEUE_NAMES}
        if unknown:
            raise ValueError(f"unknown {', '.join(sorted(unknown))}; use all or {', '.join(WORKER_QUEUE_NAMES)}")
        return value

    def delivery_policy(self) -> DeliveryPolicy:
        """The retry schedule and timeouts each notification's workflow carries from its enqueue."""
        return DeliveryPolicy(
            maxAttempts=self.max_retries,
            baseDelayMs=self.base_delay_ms,
            maxDelayMs=self.max_delay_ms,
            jitter=self.jitter_ratio,
            sendTimeoutMs=int(self.send_timeout_seconds * 1000),
            queuePauseRecheckMs=int(self.queue_pause_recheck_seconds * 1000),
            mirrorRetryMaxMs=int(self.mirror_retry_max_seconds * 1000),
        )

    @property
    def sqlalchemy_url(self) -> str:
        """Async driver URL: users may write plain `postgresql://` or `sqlite:///` URLs."""
        return to_async_url(self.database_url or f"sqlite:///{self.data_dir / 'notifications.db'}")

    @property
    def sync_sqlalchemy_url(self) -> str:
        """Sync driver URL for Alembic."""
        return to_sync_url(self.sqlalchemy_url)

    @property
    def temporal_dev_db_path(self) -> Path:
        return Path(self.temporal_dev_db) if self.temporal_dev_db else self.data_dir / "temporal.db"

    @property
    def webhook_retry_delays(self) -> list[float]:
        return [float(part) for part in self.webhook_retry_schedule.split(",") if part.strip()]

    @property
    def webhooks_may_reach_private(self) -> bool:
        return self.webhook_allow_private if self.webhook_allow_private is not None else not self.is_production

    @property
    def web_ui_base_url(self) -> str:
        """The Temporal Web UI: TEMPORAL_UI_URL, else the dev server's on the Temporal host."""
        host = self.temporal_address.rpartition(":")[0] or "localhost"
        return (self.temporal_ui_url or f"http://{host}:{self.temporal_ui_port}").rstrip("/")

    @property
    def public_base_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def is_production(self) -> bool:
        return self.env == "production"


def to_async_url(url: str) -> str:
    for prefix, replacement in (
        ("postgresql+psycopg://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite:///", "sqlite+aiosqlite:///"),
    ):
        if url.startswith(prefix):
            return replacement + url[len(prefix) :]
    return url


def to_sync_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql+psycopg://").replace("sqlite+aiosqlite://", "sqlite://")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; tests build their own `Settings(...)` and pass it explicitly."""
    return Settings()
