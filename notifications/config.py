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

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EMAIL_TASK_QUEUE = "notification-email"
PUSH_TASK_QUEUE = "notification-push"


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    env: Literal["development", "production"] = Field(
        "development", validation_alias=_alias("ENV", "NOTIFICATIONS_ENV")
    )

    # --- Temporal -------------------------------------------------------------
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233
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
        60.0, gt=0, description="safety-net re-check of a paused queue when no resume signal arrives"
    )
    mirror_retry_max_seconds: float = Field(30.0, gt=0, description="cap of the SQL-mirror retry backoff")
    default_priority: int = Field(5, ge=1, le=10)

    # --- Providers ----------------------------------------------------------------
    email_provider: Literal["outbox", "resend", "smtp"] = "outbox"
    push_provider: Literal["outbox", "fcm"] = "outbox"
    mail_from: str = Field("noreply@uzima.health", validation_alias=_alias("MAIL_FROM"))
    outbox_latency_ms: int = Field(0, ge=0, description="simulated provider latency of the development outbox")

    # --- providers (issue 3) -------------------------------------------------------
    resend_api_key: SecretStr | None = None
    resend_api_url: str = "https://api.resend.com"

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    # Derived values -----------------------------------------------------------------
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
    return url.replace("postgresql+asyncpg://", "postgresql+psycopg://").replace(
        "sqlite+aiosqlite://", "sqlite://"
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; tests build their own `Settings(...)` and pass it explicitly."""
    return Settings()
