"""Tables that coordinate the processes of one deployment: circuits, rate limits, live workers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from notifications.sql.models import Base, utcnow

CIRCUIT_CLOSED = "closed"
CIRCUIT_OPEN = "open"
CIRCUIT_HALF_OPEN = "half_open"


class ProviderState(Base):
    """One row per channel and provider: its circuit, as every worker sees it, and its last error."""

    __tablename__ = "provider_state"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    circuit: Mapped[str] = mapped_column(String(16), default=CIRCUIT_CLOSED)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    opened_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    last_error_message: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class RateLimitWindow(Base):
    """Operations one subject made in one fixed window (`window_start`, epoch seconds) of a limit."""

    __tablename__ = "rate_limit_windows"

    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)


class WorkerHeartbeat(Base):
    """A live worker process: the task queues it polls, written every few seconds."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    task_queues: Mapped[list[Any]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DashboardToken(Base):
    """A dashboard sign-in link already used, or a session signed out: its token is refused."""

    __tablename__ = "dashboard_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "link" or "session"
    subject: Mapped[str] = mapped_column(String(128))
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
