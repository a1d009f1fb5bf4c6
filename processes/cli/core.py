"""Core commands: worker, dev, migrate, status, send, queues, outbox, pause/resume/cancel/reschedule."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from notifications.config import Settings, get_settings
from notifications.types import Status
from processes.cli import cli_actor
from processes.logs import configure_from_settings


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return number


def _priority(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 10:
        raise argparse.ArgumentTypeError("must be from 1 to 10")
    return number


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


async def _with_client(fn: Callable[[Any], Awaitable[Any]]) -> Any:
    from notifications.client import NotificationClient

    client = await NotificationClient.connect(get_settings())
    try:
        return await fn(client)
    finally:
        await client.close()


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "worker",
        help="run the notification worker (every task queue, or --queues)",
        description="Run the worker polling notification-email, notification-push, notification-campaign "
        "and notification-maintenance (or the ones --queues names).",
    )
    p.add_argument(
        "--email-concurrency",
        type=_positive,
        metavar="<number>",
        help="Email worker concurrency (default: 5, EMAIL_CONCURRENCY)",
    )
    p.add_argument(
        "--push-concurrency",
        type=_positive,
        metavar="<number>",
        help="Push worker concurrency (default: 10, PUSH_CONCURRENCY)",
    )
    p.add_argument(
        "--env",
        choices=["development", "production"],
        metavar="<string>",
        help="Environment (default: development, ENV)",
    )
    p.add_argument(
        "--queues",
        dest="worker_queues",
        type=_queues,
        metavar="<list>",
        help="What to poll: all, or some of email,push,campaign,maintenance (default: all, WORKER_QUEUES); "
        "e.g. campaign workers in processes of their own",
    )
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser(
        "dev",
        help="run everything locally: Temporal dev server, SQLite, worker",
        description="Start a Temporal dev server (unless TEMPORAL_ADDRESS already answers), "
        "migrate the database and run the worker. Ctrl-C stops it all.",
    )
    p.add_argument("--email-concurrency", type=_positive, metavar="<number>")
    p.add_argument("--push-concurrency", type=_positive, metavar="<number>")
    p.set_defaults(func=cmd_dev)

    p = sub.add_parser("migrate", help="apply the database migrations (alembic upgrade)")
    p.add_argument("--revision", default="head")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("status", help="show a notification: live workflow status, SQL record, delivery log")
    p.add_argument("notification_id")
    p.set_defaults(func=cmd_status)

    for name, help_text in (
        ("pause", "pause one notification"),
        ("resume", "resume one notification"),
        ("cancel", "cancel a notification that has not been sent yet (answers once it is certain)"),
        ("reschedule", "move a scheduled notification's send time, before its first attempt"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("notification_id")
        if name == "pause":
            p.add_argument("--reason")
        if name == "reschedule":
            p.add_argument("--send-at", required=True, help="RFC 3339 with an offset, e.g. 2026-12-24T09:00:00+01:00")
        p.set_defaults(func=cmd_control, action=name)

    send = sub.add_parser("send", help="enqueue a notification (the seed's manual test script)")
    send_sub = send.add_subparsers(dest="channel", required=True, metavar="CHANNEL")
    p = send_sub.add_parser("email", help="enqueue an email")
    p.add_argument("--to", required=True)
    p.add_argument("--subject")
    p.add_argument("--html", "--message", dest="html")
    p.add_argument("--text")
    _common_send_args(p)
    p.set_defaults(func=cmd_send)
    p = send_sub.add_parser("push", help="enqueue a push notification")
    p.add_argument("--token")
    p.add_argument("--title")
    p.add_argument("--message")
    _common_send_args(p)
    fallback = p.add_argument_group(
        "fallback email", "sent instead when the push cannot reach its user (no valid device, opted out of push)"
    )
    fallback.add_argument("--fallback-email-to", metavar="ADDRESS", help="its recipient (required for a fallback)")
    fallback.add_argument("--fallback-subject")
    fallback.add_argument("--fallback-html")
    fallback.add_argument("--fallback-text")
    fallback.add_argument("--fallback-type", help="an email template, rendered with the push's --data")
    p.set_defaults(func=cmd_send)

    queues = sub.add_parser("queues", help="pause, resume or show the email and push queues")
    queues_sub = queues.add_subparsers(dest="queues_command", required=True, metavar="ACTION")
    for action in ("pause", "resume"):
        p = queues_sub.add_parser(action, help=f"{action} a queue (default: all)")
        p.add_argument("--queue", choices=["email", "push", "all"], default="all")
        if action == "pause":
            p.add_argument("--reason")
        p.set_defaults(func=cmd_queues, action=action)
    p = queues_sub.add_parser("status", help="show whether each queue is paused")
    p.set_defaults(func=cmd_queues, action="status")

    p = sub.add_parser("keygen", help="print a new ENCRYPTION_KEYS entry (AES-256-GCM key with an ID)")
    p.add_argument("--key-id", default="k1", help="the key's ID, stored with every payload it encrypts")
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser("outbox", help="show what the development outbox provider recorded")
    p.add_argument("--limit", type=_positive, default=20)
    p.set_defaults(func=cmd_outbox)


def _common_send_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--id", dest="notification_id", help="notificationId (generated when absent)")
    p.add_argument("--type")
    p.add_argument("--priority", type=_priority, default=None, help="1 (low) to 10 (most urgent), default 5")
    p.add_argument(
        "--data", action="append", default=[], metavar="KEY=VALUE", help="template variables / push data; repeatable"
    )
    p.add_argument("--user-id")
    p.add_argument("--tenant")
    p.add_argument("--wait", action="store_true", help="wait until the notification is sent or failed")
    p.add_argument("--send-at", help="send at this time (RFC 3339 with an offset); default now")
    p.add_argument("--expires-at", help="give up if not sent by this time (RFC 3339 with an offset)")
    p.add_argument(
        "--critical", action="store_true", default=None, help="send whatever the user's preferences and quiet hours say"
    )


# -- commands ---------------------------------------------------------------------------------------
def _queues(value: str) -> str:
    from notifications.config import WORKER_QUEUE_NAMES

    unknown = {q.strip() for q in value.split(",") if q.strip()} - {"all", *WORKER_QUEUE_NAMES}
    if unknown or not value.strip():
        raise argparse.ArgumentTypeError(f"use all or some of {','.join(WORKER_QUEUE_NAMES)}")
    return value


def _settings_with(args: argparse.Namespace) -> Settings:
    overrides = {}
    for name in ("email_concurrency", "push_concurrency", "env", "worker_queues"):
        if getattr(args, name, None) is not None:
            overrides[name] = getattr(args, name)
    return get_settings().model_copy(update=overrides)


def cmd_worker(args: argparse.Namespace) -> Awaitable[None]:
    from processes.worker import run_worker

    settings = _settings_with(args)
    configure_from_settings(settings)
    return run_worker(settings)


def cmd_dev(args: argparse.Namespace) -> Awaitable[None]:
    from processes.dev import run_dev

    settings = _settings_with(args)
    configure_from_settings(settings)
    return run_dev(settings)


def cmd_migrate(args: argparse.Namespace) -> None:
    from notifications.sql.migrate import upgrade

    upgrade(get_settings(), args.revision)
    print(f"database migrated to {args.revision}")


async def cmd_status(args: argparse.Namespace) -> None:
    async def show(client: Any) -> None:
        record = (await client.get(args.notification_id)).to_json()
        try:
            live = await client.status(args.notification_id)
        except Exception as exc:  # the SQL record is still worth showing
            live = {"error": f"workflow status unavailable: {type(exc).__name__}"}
        log = [a.model_dump(mode="json", by_alias=True) for a in await client.delivery_log(args.notification_id)]
        _print({"notification": record, "workflow": live, "deliveryLog": log})

    await _with_client(show)


async def cmd_control(args: argparse.Namespace) -> None:
    async def act(client: Any) -> None:
        if args.action == "pause":
            await client.pause(args.notification_id, reason=args.reason)
        elif args.action == "reschedule":
            _print((await client.reschedule(args.notification_id, args.send_at, actor=cli_actor())).to_json())
            return
        elif args.action == "cancel":
            _print((await client.cancel(args.notification_id, actor=cli_actor())).to_json())
            return
        else:
            await client.resume(args.notification_id)
        print(f"{args.action} requested for notification {args.notification_id}")

    await _with_client(act)


def _data(pairs: list[str]) -> dict[str, str] | None:
    data: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            from notifications.errors import NotificationValidationError

            raise NotificationValidationError([{"field": "data", "message": f"expected KEY=VALUE, got {pair!r}"}])
        data[key] = value
    return data or None


def _fallback(args: argparse.Namespace) -> dict[str, Any] | None:
    """The push's `fallback` from the --fallback-* options; None when none is given."""
    options = {"to": "email_to", "subject": "subject", "html": "html", "text": "text", "type": "type"}
    email = {key: value for key, name in options.items() if (value := getattr(args, f"fallback_{name}")) is not None}
    return {"email": email} if email else None


async def cmd_send(args: argparse.Namespace) -> None:
    payload: dict[str, Any] = {
        "notificationId": args.notification_id,
        "type": args.type,
        "userId": args.user_id,
        "tenant": args.tenant,
        "data": _data(args.data),
        "sendAt": args.send_at,
        "expiresAt": args.expires_at,
        "critical": args.critical,
    }
    if args.channel == "email":
        payload.update(to=args.to, subject=args.subject, html=args.html, text=args.text)
    else:
        payload.update(token=args.token, title=args.title, message=args.message, fallback=_fallback(args))
    payload = {k: v for k, v in payload.items() if v is not None}

    async def send(client: Any) -> None:
        import asyncio

        enqueue = client.enqueue_email if args.channel == "email" else client.enqueue_push
        record = await enqueue(payload, args.priority)
        if args.wait:
            while not Status(record.status).terminal:
                await asyncio.sleep(0.2)
                record = await client.get(record.notification_id)
        if not record.mirrored:
            print("note: the database is unavailable; the worker writes this record when it answers", file=sys.stderr)
        _print(record.to_json())

    await _with_client(send)


async def cmd_queues(args: argparse.Namespace) -> None:
    async def act(client: Any) -> None:
        if args.action == "pause":
            states = await client.pause_queue(args.queue, reason=args.reason, actor="cli")
        elif args.action == "resume":
            states = await client.resume_queue(args.queue, actor="cli")
        else:
            states = await client.queue_states()
        _print(states)

    await _with_client(act)


def cmd_keygen(args: argparse.Namespace) -> None:
    from notifications.codec import new_key_spec

    print(new_key_spec(args.key_id))


async def cmd_outbox(args: argparse.Namespace) -> None:
    from activities.providers.outbox import list_outbox
    from notifications.sql.engine import Database

    db = Database.from_settings(get_settings())
    try:
        async with db.sessions() as session:
            rows = await list_outbox(session, args.limit)
        for row in rows:
            print(
                f"{row.created_at:%Y-%m-%d %H:%M:%S} {row.channel:5} {row.notification_id}  "
                f"to={row.recipient}  {row.subject or ''}"
            )
        if not rows:
            print("the outbox is empty", file=sys.stderr)
    finally:
        await db.dispose()
