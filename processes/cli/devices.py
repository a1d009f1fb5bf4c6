"""`notifications devices register|list|remove`: push device tokens in SQL.

These commands only need the database, not Temporal, so they work while the
Temporal server is down. `list` masks tokens unless `--reveal` is given: a
terminal scrollback is a log too.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from notifications import devices
from notifications.config import get_settings
from notifications.sql.engine import Database


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = sub.add_parser(
        "devices",
        help="register, list and remove push device tokens",
        description="Push device tokens of users (FCM registration tokens).",
    )
    actions = group.add_subparsers(dest="devices_command", metavar="ACTION", required=True)

    p = actions.add_parser("register", help="register a device token for a user")
    p.add_argument("--user", required=True, metavar="<userId>")
    p.add_argument("--token", required=True, metavar="<token>")
    p.add_argument("--platform", choices=devices.PLATFORMS)
    p.add_argument("--tenant", metavar="<name>")
    p.set_defaults(func=cmd_register)

    p = actions.add_parser("list", help="list device tokens (tokens masked unless --reveal)")
    p.add_argument("--user", metavar="<userId>")
    p.add_argument("--valid-only", action="store_true", help="hide tokens FCM unregistered")
    p.add_argument("--reveal", action="store_true", help="print full tokens")
    p.set_defaults(func=cmd_list)

    p = actions.add_parser("remove", help="remove a device token")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--token", metavar="<token>")
    target.add_argument("--id", type=int, metavar="<deviceId>")
    p.set_defaults(func=cmd_remove)


async def cmd_register(args: argparse.Namespace) -> None:
    db = Database.from_settings(get_settings())
    try:
        record = await devices.register_device(db, args.user, args.token, platform=args.platform, tenant=args.tenant)
    finally:
        await db.dispose()
    _print(record.to_json())


async def cmd_list(args: argparse.Namespace) -> None:
    db = Database.from_settings(get_settings())
    try:
        records = await devices.list_devices(db, args.user, include_invalid=not args.valid_only)
    finally:
        await db.dispose()
    _print([r.to_json(reveal_token=args.reveal) for r in records])


async def cmd_remove(args: argparse.Namespace) -> int:
    db = Database.from_settings(get_settings())
    try:
        removed = await devices.remove_device(db, args.token, device_id=args.id)
    finally:
        await db.dispose()
    _print({"removed": removed})
    return 0 if removed else 1
