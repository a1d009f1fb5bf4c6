"""API commands: `notifications api` serves the admin API; `notifications token` mints a JWT for it."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from notifications.config import get_settings
from processes.logs import configure_logging


def _port(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError("must be from 1 to 65535")
    return number


def _ttl(value: str) -> float:
    from notifications.auth import parse_ttl

    try:
        return parse_ttl(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "api",
        help="serve the admin API (FastAPI) on API_HOST:API_PORT",
        description="Serve the admin and enqueue API. Tokens: `notifications token`.",
    )
    p.add_argument("--host", help="default: API_HOST (127.0.0.1)")
    p.add_argument("--port", type=_port, help="default: API_PORT (8000)")
    p.set_defaults(func=cmd_api)

    p = sub.add_parser(
        "token",
        help="mint a JWT for the admin API",
        description="Print a signed token (JWT_SECRET, JWT_PRIVATE_KEY or the development secret under DATA_DIR).",
    )
    p.add_argument("--role", choices=["admin", "service", "codec"], default="admin")
    p.add_argument("--ttl", type=_ttl, default=3600.0, metavar="DURATION", help="e.g. 15m, 1h, 7d (default 1h)")
    p.add_argument("--tenant", help="restrict the token to one tenant's notifications")
    p.add_argument("--subject", help="the `sub` claim recorded in the audit trail (default: <role>-cli)")
    p.set_defaults(func=cmd_token)


async def cmd_api(args: argparse.Namespace) -> None:
    from processes.apiserver import serve

    configure_logging()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(get_settings(), stop, host=args.host, port=args.port)


def cmd_token(args: argparse.Namespace) -> int:
    from notifications.auth import AuthConfigurationError, mint_token

    try:
        token = mint_token(
            get_settings(), role=args.role, ttl_seconds=args.ttl, subject=args.subject, tenant=args.tenant
        )
    except AuthConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(token)
    return 0
