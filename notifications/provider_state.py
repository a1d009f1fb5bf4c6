"""Provider health shared across processes (workers write it, the admin API and other workers read it).

Contract used by the health check: `provider_health(db)` returns, per channel,
`{"provider": name, "status": "ok" | "degraded", "circuit": "closed" | "open" | "half_open",
"lastErrorCode": str | None, "order": [names], "providers": [the same per provider]}`:
`provider` is the first provider of the channel's failover order that is not degraded (the one
new notifications go to), and the channel is degraded when any of its providers is.

A worker's circuit breaker writes its row (one per channel and provider) only when something
changes (a circuit transition, an error, the first success after errors), so the cost on the
hot path is nil while deliveries succeed; and reads it back at most once per
CIRCUIT_SHARED_CACHE_SECONDS to honour a circuit another worker opened.
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
    """Upsert the provider's row; an error or success timestamp only moves when one is reported."""
    now = utcnow()
    values: dict[str, Any] = {
        "circuit": circuit,
        "consecutive_failures": consecutive_failures,
        "opened_until": opened_until,
        "updated_at": now,
    }
    if error_code is not None:
        values.update(last_error_code=error_code, last_error_message=(error_message or "")[:1000], last_error_at=now)
    if success:
        values["last_success_at"] = now
    await store.record_provider_state(db, channel, provider, values)


async def read_state(db: Database, channel: str, provider: str) -> ProviderState | None:
    async with db.sessions() as session:
        return await session.get(ProviderState, (channel, provider))


def open_for(row: ProviderState | None, now: datetime | None = None) -> float:
    """Seconds the row's circuit stays open (0 when it is not open)."""
    if row is None or row.circuit != CIRCUIT_OPEN:
        return 0.0
    until = as_utc(row.opened_until)
    if until is None:
        return 0.0
    return max((until - (now or utcnow())).total_seconds(), 0.0)


async def read_states(db: Database) -> dict[str, list[ProviderState]]:
    async with db.sessions() as session:
        rows = await session.scalars(select(ProviderState))
        found: dict[str, list[ProviderState]] = {}
        for row in rows:
            found.setdefault(row.channel, []).append(row)
        return found


def _configured_order(channel: str) -> list[str]:
    """The failover order the settings of this process name."""
    from notifications.config import get_settings

    try:
        return get_settings().provider_order(channel)
    except Exception:  # the health check must answer even with broken settings
        return ["unknown"]


def _is_configuration_error(code: str | None) -> bool:
    try:
        return code is not None and CATEGORY[ErrorCode(code)] is ErrorCategory.CONFIGURATION
    except ValueError:
        return False


def health_of(row: ProviderState | None, provider: str, now: datetime | None = None) -> dict[str, Any]:
    if row is None:
        return {"provider": provider, "status": "ok", "circuit": CIRCUIT_CLOSED, "lastErrorCode": None}
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


def channel_health(rows: list[ProviderState], order: list[str], now: datetime | None = None) -> dict[str, Any]:
    """One channel: the providers workers wrote rows for, in failover order, summed up."""
    by_name = {row.provider: row for row in rows}
    # What the workers wrote is the truth; this process's settings only order it (or stand in).
    names = [n for n in order if n in by_name] + sorted(set(by_name) - set(order)) or order
    providers = [health_of(by_name.get(name), name, now) for name in names]
    in_use = next((p for p in providers if p["status"] == "ok"), providers[0])
    degraded = any(p["status"] != "ok" for p in providers)
    return {
        **in_use,
        "status": "degraded" if degraded else "ok",
        "order": names,
        "providers": providers,
    }


async def provider_health(db: Database) -> dict[str, dict[str, Any]]:
    """Per channel: provider in use, ok/degraded, circuit state, the last error code, every provider."""
    rows = await read_states(db)
    now = utcnow()
    return {channel: channel_health(rows.get(channel, []), _configured_order(channel), now) for channel in CHANNELS}
