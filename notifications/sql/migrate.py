"""`notifications migrate`: Alembic upgrade driven by the application's settings."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations
from notifications.config import Settings
from notifications.sql.engine import ensure_sqlite_dir


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    cfg.set_main_option("sqlalchemy.url", settings.sync_sqlalchemy_url)
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    if settings.sqlalchemy_url.startswith("sqlite"):
        ensure_sqlite_dir(settings.sqlalchemy_url)
    command.upgrade(alembic_config(settings), revision)
