"""Provider health shared across processes (workers write it, the admin API reads it).

Contract used by the health check: `provider_health(db)` returns, per channel,
`{"provider": name, "status": "ok" | "degraded", "circuit": "closed" | "open" | "half_open",
"lastErrorCode": str | None}`.

The circuit breaker lives in each worker's memory (a breaker must answer without a
database round trip); it writes this table only when something changes (a circuit
transition, an error, the first success after errors), so the cost on the hot path
is nil while deliveries succeed. With several worker processes the row is the last
writer's view, which is what an operator wants to see: "is some worker's circuit open".
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from notifications.errors import CATEGORY, ErrorCategory, ErrorCode
from notifications.sql import store
from notifications.sql.engine import Database
from notifications.sql.models import CIRCUIT_CLOSED, CIRCUIT_HALF_OPEN, CIRCUIT_OPEN, ProviderState, utcnow

log = logging.getLogger("notifications.provider_state")

CHANNELS = ("email", "push")


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything stored here is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


async def record_state(
    db: Database,
    channel: str,
    provider: str,
    *,
    circuit: str,
    consecutive_failures: int,
    opened_until: datetime | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    success: bool = False,
) -> None:
    """Upsert the channel's row; an error or success timestamp only moves when one is reported."""
    now = utcnow()
    values: dict[str, Any] = {
        "provider": provider,
        "circuit": circuit,
        "consecutive_failures": consecutive_failures,
        "opened_until": opened_until,
        "updated_at": now,
    }
    if error_code is not None:
        values.update(last_error_code=error_code, last_error_message=(error_message or "")[:1000], last_error_at=now)
    if success:
        values["last_success_at"] = now
    await store.record_provider_state(db, channel, values)


async def read_states(db: Database) -> dict[str, ProviderState]:
    async with db.sessions() as session:
        rows = await session.scalars(select(ProviderState))
        return {row.channel: row for row in rows}


def _default_provider(channel: str) -> str:
    """Before any worker wrote a row, the provider the settings of this process name."""
    from notifications.config import get_settings

    try:
        settings = get_settings()
    except Exception:  # the health check must answer even with broken settings
        return "unknown"
    return settings.email_provider if channel == "email" else settings.push_provider


def _is_configuration_error(code: str | None) -> bool:
    try:
        return code is not None and CATEGORY[ErrorCode(code)] is ErrorCategory.CONFIGURATION
    except ValueError:
        return False


def health_of(row: ProviderState | None, channel: str, now: datetime | None = None) -> dict[str, Any]:
    if row is None:
        return {
            "provider": _default_provider(channel),
            "status": "ok",
            "circuit": CIRCUIT_CLOSED,
            "lastErrorCode": None,
        }
    now = now or utcnow()
    circuit = row.circuit
    opened_until = as_utc(row.opened_until)
    if circuit == CIRCUIT_OPEN and opened_until is not None and opened_until <= now:
        circuit = CIRCUIT_HALF_OPEN  # the cool-down is over: the next attempt is a probe
    last_error_at, last_success_at = as_utc(row.last_error_at), as_utc(row.last_success_at)
    config_error_current = _is_configuration_error(row.last_error_code) and (
        last_success_at is None or (last_error_at is not None and last_error_at >= last_success_at)
    )
    degraded = circuit == CIRCUIT_OPEN or config_error_current
    return {
        "provider": row.provider,
        "status": "degraded" if degraded else "ok",
        "circuit": circuit,
        "lastErrorCode": row.last_error_code,
    }


async def provider_health(db: Database) -> dict[str, dict[str, Any]]:
    """Per channel: provider, ok/degraded, circuit state and the last error code."""
    rows = await read_states(db)
    now = utcnow()
    return {channel: health_of(rows.get(channel), channel, now) for channel in CHANNELS}
