"""`notifications preferences get|set <userId>` and `tenant-get|tenant-set <tenant>`.

Like `devices`, these need only the database, not Temporal. A change is written to the audit
trail as made by `cli:<login name>`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from notifications.config import get_settings
from notifications.errors import NotificationValidationError
from notifications.sql.engine import Database
from notifications.user_preferences import PreferencesMixin
from processes.cli import cli_actor


class _Preferences(PreferencesMixin):
    def __init__(self, db: Database) -> None:
        self.db = db


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = sub.add_parser(
        "preferences",
        help="read and set users' preferences and tenants' defaults",
        description="Which channels and types a user allows, their time zone and quiet hours. "
        "Example: notifications preferences set u-42 --json "
        '\'{"channels": {"push": false}, "timezone": "Europe/Berlin"}\'',
    )
    actions = group.add_subparsers(dest="preferences_command", metavar="ACTION", required=True)
    for name, target, help_ in (
        ("get", "userId", "print a user's preferences"),
        ("set", "userId", "replace a user's preferences with a JSON document"),
        ("tenant-get", "tenant", "print a tenant's default preferences"),
        ("tenant-set", "tenant", "replace a tenant's default preferences"),
    ):
        p = actions.add_parser(name, help=help_)
        p.add_argument("target", metavar=f"<{target}>")
        if target == "userId":
            p.add_argument("--tenant", metavar="<name>", help="the user's tenant (default: default)")
        if name.endswith("set"):
            p.add_argument("--json", required=True, metavar="<document>", dest="document")
        p.set_defaults(func=cmd_preferences, action=name)


async def cmd_preferences(args: argparse.Namespace) -> None:
    document = _parse(args.document) if args.action.endswith("set") else None
    actor = cli_actor()
    db = Database.from_settings(get_settings())
    prefs = _Preferences(db)
    try:
        if args.action == "get":
            result = await prefs.get_preferences(args.target, tenant=args.tenant)
        elif args.action == "set":
            result = await prefs.set_preferences(args.target, document, tenant=args.tenant, actor=actor)
        elif args.action == "tenant-get":
            result = await prefs.get_tenant_preferences(args.target)
        else:
            result = await prefs.set_tenant_preferences(args.target, document, actor=actor)
    finally:
        await db.dispose()
    print(json.dumps(result, indent=2))


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotificationValidationError([{"field": "json", "message": f"not valid JSON: {exc.msg}"}]) from None
