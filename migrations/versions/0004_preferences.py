"""Preferences (users, addresses, tenant defaults) and the notification's `critical` and `deferred_reason`.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "preferences",
        sa.Column("tenant", sa.String(128), primary_key=True),
        sa.Column("subject", sa.String(400), primary_key=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("gates", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("critical", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("deferred_reason", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("deferred_reason")
        batch.drop_column("critical")
    op.drop_table("preferences")
