"""`notifications suppressions list|add|remove`: the suppression list, with the database only.

Addresses print in full (an operator managing the list needs them); changes are audited as
`cli:<login name>`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from notifications import suppressions
from notifications.config import get_settings
from notifications.recipients import masked
from notifications.sql import store
from notifications.sql.engine import Database
from processes.cli import cli_actor


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = sub.add_parser(
        "suppressions",
        help="list, add and remove suppressed recipients",
        description="Recipients no notification goes to: hard bounces, complaints, unsubscribes, manual entries.",
    )
    actions = group.add_subparsers(dest="suppressions_command", metavar="ACTION", required=True)
    p = actions.add_parser("list", help="newest first")
    p.add_argument("--channel", choices=("email", "push"))
    p.add_argument("--reason", choices=suppressions.REASONS)
    p.add_argument("--q", metavar="<text>", help="part of the address")
    p.add_argument("--tenant", metavar="<name>")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_list)
    p = actions.add_parser("add", help="suppress an address (email) or a device token (push)")
    p.add_argument("address", metavar="<address>")
    p.add_argument("--channel", choices=("email", "push"), default="email")
    p.add_argument("--reason", choices=suppressions.REASONS, default="manual")
    p.add_argument("--note", metavar="<text>")
    p.add_argument("--tenant", metavar="<name>")
    p.set_defaults(func=cmd_add)
    p = actions.add_parser("remove", help="remove an entry by its ID")
    p.add_argument("id", type=int, metavar="<id>")
    p.set_defaults(func=cmd_remove)


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


async def _audit(db: Database, action: str, tenant: str | None, target: str, details: dict[str, Any]) -> None:
    actor = cli_actor()
    await store.write_audit(db, actor=actor, tenant=tenant, action=action, target=target, outcome="ok", details=details)


async def cmd_list(args: argparse.Namespace) -> None:
    db = Database.from_settings(get_settings())
    try:
        items, _ = await suppressions.page(
            db, args.tenant, channel=args.channel, reason=args.reason, q=args.q, limit=args.limit
        )
    finally:
        await db.dispose()
    _print([i.to_json() for i in items])


async def cmd_add(args: argparse.Namespace) -> None:
    entry = suppressions.NewSuppression.model_validate(
        {"channel": args.channel, "address": args.address, "reason": args.reason, "note": args.note}
    )
    db = Database.from_settings(get_settings())
    try:
        record, created = await suppressions.add(db, args.tenant, entry, cli_actor())
        details = {"channel": record.channel, "address": masked(record.channel, record.address), "created": created}
        await _audit(db, "suppressions.add", record.tenant, f"suppression:{record.id}", details)
    finally:
        await db.dispose()
    _print(record.to_json())


async def cmd_remove(args: argparse.Namespace) -> None:
    db = Database.from_settings(get_settings())
    try:
        record = await suppressions.remove(db, args.id, None)
        details = {"channel": record.channel, "address": masked(record.channel, record.address)}
        await _audit(db, "suppressions.remove", record.tenant, f"suppression:{record.id}", details)
    finally:
        await db.dispose()
    _print(record.to_json())
