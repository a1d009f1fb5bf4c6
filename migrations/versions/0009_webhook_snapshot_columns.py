"""Webhook triggers, second revision: the SQLite snapshot has every column, and `pending` is no event.

- SQLite's triggers build the snapshot from a list of columns, which 0006 wrote before campaigns
  (0007) and fallbacks (0008) added theirs: an outbound event's `data` had `campaignId`,
  `fallbackId` and `fallbackOf` null. The list now is every column but `content`, as PostgreSQL's
  `to_jsonb(NEW) - 'content'` has it.
- `pending` (a campaign's recipient stored, a failed notification reset for a manual retry) is not
  one of the event types an endpoint can subscribe to, yet `["*"]` received it: both dialects now
  skip it.
- SQLite's deliveries named their event by `last_insert_rowid()`, which inside the trigger is the
  last row the trigger itself inserted: with two endpoints on one event, the second delivery named
  the first delivery's ID as its event. They now name the notification's newest event.

A change to the notifications table's columns still needs a new revision of these triggers.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SNAPSHOT = (
    "id tenant channel type status priority user_id recipient subject attempts paused last_attempt_at "
    "next_retry_at error_code error_message provider provider_message_id workflow_id run_id completed_at "
    "send_at expires_at critical delivered_at bounced_at complained_at opened_at clicked_at deferred_reason "
    "campaign_id campaign_seq campaign_key batch_key fallback_id fallback_of created_at updated_at"
).split()
_ADDED_SINCE_0006 = ("campaign_id", "campaign_seq", "campaign_key", "batch_key", "fallback_id", "fallback_of")
_SNAPSHOT_0006 = [c for c in _SNAPSHOT if c not in _ADDED_SINCE_0006]  # what a downgrade restores
_STAMPS = {
    "opened_at": "notification.opened",
    "clicked_at": "notification.clicked",
    "complained_at": "notification.complained",
}
_SQLITE_TRIGGERS = ("on_insert", "on_status", "on_retry", *(f"on_{c}" for c in _STAMPS))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_function(skip_pending=True)
    else:
        _sqlite_triggers(_SNAPSHOT, skip_pending=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_function(skip_pending=False)
    else:
        _sqlite_triggers(_SNAPSHOT_0006, skip_pending=False)


def _postgresql_function(*, skip_pending: bool) -> None:
    """The trigger itself (its columns, its function's name) stays; only the function is replaced."""
    skipped = "('retrying', 'pending')" if skip_pending else "('retrying')"
    stamps = "\n".join(
        f"    IF TG_OP = 'UPDATE' AND OLD.{c} IS NULL AND NEW.{c} IS NOT NULL THEN kinds := kinds || '{k}'::text; END IF;"
        for c, k in _STAMPS.items()
    )
    op.execute(f"""
CREATE OR REPLACE FUNCTION notifications_webhook_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kinds text[] := ARRAY[]::text[];
    kind text;
    new_event bigint;
BEGIN
    IF (TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status) AND NEW.status NOT IN {skipped} THEN
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


def _sqlite_triggers(columns: list[str], *, skip_pending: bool) -> None:
    """SQLite has no CREATE OR REPLACE TRIGGER: each is dropped and made again."""
    for name in _SQLITE_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS webhook_event_{name}")
    snapshot = ", ".join(f"'{c}', NEW.{c}" for c in columns)
    skipped = "('retrying', 'pending')" if skip_pending else "('retrying')"
    on_insert = "AFTER INSERT ON notifications" + (" WHEN NEW.status <> 'pending'" if skip_pending else "")
    triggers = {
        "webhook_event_on_insert": (on_insert, "'notification.' || NEW.status"),
        "webhook_event_on_status": (
            f"AFTER UPDATE OF status ON notifications WHEN NEW.status IS NOT OLD.status AND NEW.status NOT IN {skipped}",
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
    SELECT e.id, (SELECT MAX(w.id) FROM webhook_events w WHERE w.notification_id = NEW.id), 'pending', 0,
           strftime('%Y-%m-%d %H:%M:%f', 'now'), strftime('%Y-%m-%d %H:%M:%f', 'now')
    FROM webhook_endpoints e WHERE {wanted};
END
""")
