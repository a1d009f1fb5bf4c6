"""Campaigns: one message to many recipients, each recipient a notifications row of its campaign.

`campaign_seq` numbers a campaign's recipients in the order they were added (the workflow walks
them by ranges of it); `campaign_key` is a digest of the recipient, so one listed twice is
stored once; `batch_key` names the provider batch call a claimed recipient belongs to, so a
repeated batch sends the same recipients under the same idempotency key.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("campaign_id", sa.String(64)),
    ("campaign_seq", sa.Integer()),
    ("campaign_key", sa.String(64)),
    ("batch_key", sa.String(160)),
)


_INDEXES = (
    ("ux_notifications_campaign_seq", ["campaign_id", "campaign_seq"], True),
    ("ux_notifications_campaign_key", ["campaign_id", "campaign_key"], True),
    ("ix_notifications_campaign_status", ["campaign_id", "status"], False),
)
_CAMPAIGN_ROWS = {
    "sqlite_where": sa.text("campaign_id IS NOT NULL"),
    "postgresql_where": sa.text("campaign_id IS NOT NULL"),
}


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(128), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("type", sa.String(64), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rate_limit_per_second", sa.Integer(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("next_seq", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_campaigns_tenant_created", "campaigns", ["tenant", "created_at"])
    # Plain ADD COLUMN (no batch table copy): SQLite's copy would drop the webhook triggers.
    for name, type_ in _COLUMNS:
        op.add_column("notifications", sa.Column(name, type_, nullable=True))
    # Partial: a single notification's writes (no campaign) maintain none of these indexes.
    for name, columns, unique in _INDEXES:
        op.create_index(name, "notifications", columns, unique=unique, **_CAMPAIGN_ROWS)


def downgrade() -> None:
    op.drop_index("ix_notifications_campaign_status", "notifications")
    op.drop_index("ux_notifications_campaign_key", "notifications")
    op.drop_index("ux_notifications_campaign_seq", "notifications")
    for name, _ in reversed(_COLUMNS):
        op.drop_column("notifications", name)
    op.drop_index("ix_campaigns_tenant_created", "campaigns")
    op.drop_table("campaigns")
