"""A campaign at the edge (Python client, HTTP, CLI): its payload, validated before anything is stored,
and its JSON record as `GET /api/admin/campaigns/{id}` answers it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, field_validator

from notifications.campaign_types import CampaignStatus
from notifications.schemas import MAX_BODY, MAX_SUBJECT, NAME_PATTERN, as_utc

CAMPAIGN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,47}$"  # room for `-<n>` in its recipients' IDs
UPLOAD_HINT = "add more with POST /api/admin/campaigns/{id}/recipients (text/csv or application/x-ndjson)"


class CampaignCreate(BaseModel):
    """`POST /api/admin/campaigns`: the message, its recipients (at most 10,000 inline) and when."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    campaignId: str | None = Field(None, pattern=CAMPAIGN_ID_PATTERN)
    name: str = Field(..., min_length=1, max_length=200)
    channel: Literal["email", "push"]
    type: str | None = Field(None, pattern=NAME_PATTERN)
    tenant: str | None = Field(None, pattern=NAME_PATTERN)
    subject: str | None = Field(None, max_length=MAX_SUBJECT)
    html: str | None = Field(None, max_length=MAX_BODY)
    text: str | None = Field(None, max_length=MAX_BODY)
    title: str | None = Field(None, max_length=1024)
    message: str | None = Field(None, max_length=4096)
    data: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(1, ge=1, le=10)  # kept on its recipients' rows; campaigns run below any single one
    sendAt: AwareDatetime | None = None
    expiresAt: AwareDatetime | None = None
    rateLimitPerSecond: int | None = Field(None, ge=1, le=100_000)
    draft: StrictBool = False
    recipients: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("data")
    @classmethod
    def _data_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not isinstance(key, str) or not key:
                raise ValueError("keys must be non-empty strings")
        return value


def campaign_json(row: Any, counts: dict[str, int], now: datetime) -> dict[str, Any]:
    """The campaign's record with its recipients counted by status (`queued`: not sent yet)."""
    sent = sum(counts.get(s, 0) for s in ("sent", "delivered", "bounced"))
    finished = sent + sum(counts.get(s, 0) for s in ("failed", "suppressed", "expired", "cancelled"))
    total = int(row.total)
    queued = max(total - finished, 0)
    started = as_utc(row.started_at) if row.started_at else None
    completed = as_utc(row.completed_at) if row.completed_at else None
    elapsed = ((completed or now) - started).total_seconds() if started else 0.0
    rate = round(sent / elapsed, 1) if elapsed > 0 else None
    running = row.status in (CampaignStatus.RUNNING.value, CampaignStatus.PAUSED.value)
    eta = round(queued / rate, 1) if running and rate else (0.0 if row.status == CampaignStatus.COMPLETED else None)
    send_at = as_utc(row.send_at) if row.send_at else None
    return {
        "campaignId": row.id,
        "name": row.name,
        "channel": row.channel,
        "type": row.type,
        "tenant": row.tenant,
        "status": row.status,
        "total": total,
        "queued": queued,
        "sent": sent,
        "failed": counts.get("failed", 0),
        "suppressed": counts.get("suppressed", 0),
        "expired": counts.get("expired", 0),
        "cancelled": counts.get("cancelled", 0),
        "ratePerSecond": rate,
        "rateLimitPerSecond": row.rate_limit_per_second,
        "sendAt": send_at.isoformat() if send_at else None,
        "createdAt": as_utc(row.created_at).isoformat(),
        "startedAt": started.isoformat() if started else None,
        "completedAt": completed.isoformat() if completed else None,
        "etaSeconds": eta,
    }
