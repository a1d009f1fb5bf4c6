"""`notifications`: the command line of the notification system.

Each command group lives in its own module with a `register(subparsers)`
function; this module only assembles them and turns our typed errors into
clear messages and exit codes (2 for bad input, 1 for everything else).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Sequence
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from notifications.errors import NotificationError, NotificationUnavailableError, NotificationValidationError

COMMAND_MODULES = [
    "processes.cli.core",
    "processes.cli.devices",
    "processes.cli.preferences",
    "processes.cli.suppressions",
    "processes.cli.campaigns",
    "processes.cli.api",
]
# Commands of the tools installed beside the runtime (`bench`, `chaos`): each registers itself
# under this entry-point group, so the runtime imports none of them.
PLUGIN_GROUP = "notifications.commands"


def cli_actor() -> str:
    """Who a change made from the CLI is audited as."""
    return f"cli:{getpass.getuser()}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="notifications",
        description="Durable email and push notifications on Temporal.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        import_module(name).register(sub)
    for plugin in sorted(entry_points(group=PLUGIN_GROUP), key=lambda p: p.name):
        plugin.load()(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except NotificationValidationError as exc:
        for error in exc.errors:
            print(f"error: {error['field']}: {error['message']}", file=sys.stderr)
        return 2
    except NotificationUnavailableError as exc:
        retry = (
            f" (nothing was stored; retry with --notification-id {exc.notification_id})" if exc.notification_id else ""
        )
        print(f"error: {exc}{retry}", file=sys.stderr)
        return 1
    except NotificationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except (ConnectionError, OSError, RuntimeError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def run(argv: Sequence[str] | None = None) -> Any:
    sys.exit(main(argv))
