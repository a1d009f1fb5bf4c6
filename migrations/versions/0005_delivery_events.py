"""Provider webhooks in (delivery events, delivered / bounced ...) and the suppression list.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIMES = ("delivered_at", "bounced_at", "complained_at", "opened_at", "clicked_at")


def upgrade() -> None:
    op.create_table(
        "delivery_events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("provider_message_id", sa.String(256), nullable=False),
        sa.Column("notification_id", sa.String(128), nullable=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.UniqueConstraint("provider", "event_id", name="uq_delivery_event"),
    )
    op.create_index("ix_delivery_events_message", "delivery_events", ["provider_message_id"])
    op.create_index("ix_delivery_events_notification", "delivery_events", ["notification_id"])
    op.create_table(
        "suppressions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("address", sa.String(512), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant", "channel", "address", name="uq_suppression"),
    )
    with op.batch_alter_table("notifications") as batch:
        for name in _TIMES:
            batch.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_notifications_provider_message_id", ["provider_message_id"])


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_index("ix_notifications_provider_message_id")
        for name in reversed(_TIMES):
            batch.drop_column(name)
    op.drop_table("suppressions")
    op.drop_index("ix_delivery_events_notification", "delivery_events")
    op.drop_index("ix_delivery_events_message", "delivery_events")
    op.drop_table("delivery_events")
