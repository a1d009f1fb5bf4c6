"""Webhooks out: endpoints, the events outbox and its deliveries, filled by triggers on notifications.

Every status a notification enters (`retrying` when a retry is pending, as the NotificationStatus
search attribute has it, not at each attempt's start; and its first open, click, complaint) becomes an event row in
the same transaction as the change, for each enabled endpoint subscribed to it: a trigger, so no
write path can change a status without its event, and nothing is written when no endpoint wants
it. The event keeps a snapshot of the row (its message content left out) and a per-notification
`version`. A change to the notifications table's columns needs a new revision of these triggers.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_SNAPSHOT = (
    "id tenant channel type status priority user_id recipient subject attempts paused last_attempt_at "
    "next_retry_at error_code error_message provider provider_message_id workflow_id run_id completed_at "
    "send_at expires_at critical delivered_at bounced_at complained_at opened_at clicked_at deferred_reason "
    "created_at updated_at"
).split()
_STAMPS = {
    "opened_at": "notification.opened",
    "clicked_at": "notification.clicked",
    "complained_at": "notification.complained",
}


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(128), nullable=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("previous_secret", sa.String(128), nullable=True),
        sa.Column("previous_secret_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("notification_id", sa.String(128), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webhook_events_notification", "webhook_events", ["notification_id", "version"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("endpoint_id", sa.String(40), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_delivery"),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_webhook_deliveries_endpoint", "webhook_deliveries", ["endpoint_id", "id"])
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_trigger()
    else:
        _sqlite_triggers()


def _postgresql_trigger() -> None:
    stamps = "\n".join(
        f"    IF TG_OP = 'UPDATE' AND OLD.{c} IS NULL AND NEW.{c} IS NOT NULL THEN kinds := kinds || '{k}'::text; END IF;"
        for c, k in _STAMPS.items()
    )
    op.execute(f"""
CREATE FUNCTION notifications_webhook_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kinds text[] := ARRAY[]::text[];
    kind text;
    new_event bigint;
BEGIN
    IF (TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status) AND NEW.status <> 'retrying' THEN
        kinds := kinds || ('notification.' || NEW.status);
    END IF;
    IF NEW.status = 'retrying' AND NEW.next_retry_at IS NOT NULL
       AND (TG_OP = 'INSERT' OR OLD.next_retry_at IS NULL OR OLD.status IS DISTINCT FROM 'retrying') THEN
        kinds := kinds || 'notification.retrying'::text;
    END IF;
{stamps}
    FOREACH kind IN ARRAY kinds LOOP
        IF EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.enabled AND (e.tenant IS NULL OR e.tenant = NEW.tenant)
                   AND (e.events::jsonb ? kind OR e.events::jsonb ? '*')) THEN
            INSERT INTO webhook_events (notification_id, tenant, type, version, snapshot, created_at)
            VALUES (NEW.id, NEW.tenant, kind,
                    (SELECT COALESCE(MAX(w.version), 0) + 1 FROM webhook_events w WHERE w.notification_id = NEW.id),
                    to_jsonb(NEW) - 'content', now())
            RETURNING id INTO new_event;
            INSERT INTO webhook_deliveries (endpoint_id, event_id, status, attempts, next_attempt_at, created_at)
            SELECT e.id, new_event, 'pending', 0, now(), now() FROM webhook_endpoints e
            WHERE e.enabled AND (e.tenant IS NULL OR e.tenant = NEW.tenant)
              AND (e.events::jsonb ? kind OR e.events::jsonb ? '*');
        END IF;
    END LOOP;
    RETURN NULL;
END $$;
""")
    op.execute(
        "CREATE TRIGGER notifications_webhook_events AFTER INSERT OR UPDATE OF status, next_retry_at, opened_at, "
        "clicked_at, complained_at ON notifications FOR EACH ROW EXECUTE FUNCTION notifications_webhook_events()"
    )


def _sqlite_triggers() -> None:
    snapshot = ", ".join(f"'{c}', NEW.{c}" for c in _SNAPSHOT)
    triggers = {
        "webhook_event_on_insert": ("AFTER INSERT ON notifications", "'notification.' || NEW.status"),
        "webhook_event_on_status": (
            "AFTER UPDATE OF status ON notifications WHEN NEW.status IS NOT OLD.status AND NEW.status <> 'retrying'",
            "'notification.' || NEW.status",
        ),
        "webhook_event_on_retry": (
            "AFTER UPDATE OF status, next_retry_at ON notifications WHEN NEW.status = 'retrying' "
            "AND NEW.next_retry_at IS NOT NULL AND (OLD.next_retry_at IS NULL OR OLD.status IS NOT 'retrying')",
            "'notification.retrying'",
        ),
        **{
            f"webhook_event_on_{c}": (
                f"AFTER UPDATE OF {c} ON notifications WHEN OLD.{c} IS NULL AND NEW.{c} IS NOT NULL",
                f"'{k}'",
            )
            for c, k in _STAMPS.items()
        },
    }
    for name, (when, kind) in triggers.items():
        wanted = (
            "e.enabled AND (e.tenant IS NULL OR e.tenant = NEW.tenant) "
            f"AND EXISTS (SELECT 1 FROM json_each(e.events) j WHERE j.value IN ({kind}, '*'))"
        )
        op.execute(f"""
CREATE TRIGGER {name} {when}
BEGIN
    INSERT INTO webhook_events (notification_id, tenant, type, version, snapshot, created_at)
    SELECT NEW.id, NEW.tenant, {kind},
           (SELECT COALESCE(MAX(w.version), 0) + 1 FROM webhook_events w WHERE w.notification_id = NEW.id),
           json_object({snapshot}), strftime('%Y-%m-%d %H:%M:%f', 'now')
    WHERE EXISTS (SELECT 1 FROM webhook_endpoints e WHERE {wanted});
    INSERT INTO webhook_deliveries (endpoint_id, event_id, status, attempts, next_attempt_at, created_at)
    SELECT e.id, last_insert_rowid(), 'pending', 0, strftime('%Y-%m-%d %H:%M:%f', 'now'),
           strftime('%Y-%m-%d %H:%M:%f', 'now')
    FROM webhook_endpoints e WHERE {wanted};
END
""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS notifications_webhook_events ON notifications")
        op.execute("DROP FUNCTION IF EXISTS notifications_webhook_events()")
    else:
        for name in ("on_insert", "on_status", "on_retry", *(f"on_{c}" for c in _STAMPS)):
            op.execute(f"DROP TRIGGER IF EXISTS webhook_event_{name}")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_events")
    op.drop_table("webhook_endpoints")
