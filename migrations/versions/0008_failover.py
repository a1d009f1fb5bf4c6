"""Routing around failure: provider state per provider, shared rate limits, worker heartbeats, fallbacks.

- `provider_state` is keyed by channel AND provider (a channel may now have several, in failover
  order); its rows are a cache of circuit state, so the table is recreated rather than migrated.
- `rate_limit_windows` counts the admin API's limited operations per subject and fixed window, for
  every API process of a deployment.
- `worker_heartbeats`: each worker process says every few seconds which task queues it polls.
- `notifications.fallback_id` / `fallback_of` link a push to the email sent in its place.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _provider_state(*key: str) -> None:
    op.create_table(
        "provider_state",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("circuit", sa.String(length=16), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("opened_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error_code", sa.String(length=64), nullable=True),
        sa.Column("last_error_message", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(*key),
    )


def upgrade() -> None:
    op.drop_table("provider_state")
    _provider_state("channel", "provider")
    op.create_table(
        "rate_limit_windows",
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("subject", "window_start"),
    )
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(length=128), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("task_queues", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("worker_id"),
    )
    # Plain ADD COLUMN (no batch table copy): SQLite's copy would drop the webhook triggers.
    op.add_column("notifications", sa.Column("fallback_id", sa.String(128), nullable=True))
    op.add_column("notifications", sa.Column("fallback_of", sa.String(128), nullable=True))


def downgrade() -> None:
    op.drop_column("notifications", "fallback_of")
    op.drop_column("notifications", "fallback_id")
    op.drop_table("worker_heartbeats")
    op.drop_table("rate_limit_windows")
    op.drop_table("provider_state")
    _provider_state("channel")
