"""`notifications campaign create|add|start|status|list|pause|resume|cancel`: one message to many.

A CSV or NDJSON file is streamed in 64 KiB chunks through the library's parsers, so a file of
any size is read in bounded memory. Every change is written to the audit trail as made by
`cli:<login name>`, with the admin API's action names. Output names recipients by line only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

from notifications.audit import AuditEntry, audited
from notifications.campaign_recipients import Recipient, RecipientError, parse_csv, parse_ndjson
from notifications.errors import NotificationConflictError, NotificationValidationError
from processes.cli import cli_actor
from processes.cli.core import _positive, _print, _priority, _with_client

CHUNK = 64 * 1024  # bytes read from a recipients file at a time
SHOWN_REJECTED = 10  # rejected lines listed; the count covers them all
REPORTED_CAP = 1000  # the library lists at most this many rejected recipients per call
_EMAIL_ONLY = ("subject", "html", "text")
_PUSH_ONLY = ("title", "message")

Batches = AsyncIterator[list[Recipient | RecipientError]]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = sub.add_parser(
        "campaign",
        help="one message to many recipients: create, add, start, status, list, pause, resume, cancel",
        description="A campaign sends one message (templated per recipient) to many recipients, each a "
        "notification. Example: notifications campaign create --channel email --type welcome --csv recipients.csv",
    )
    actions = group.add_subparsers(dest="campaign_command", metavar="ACTION", required=True)

    p = actions.add_parser("create", help="create a campaign from inline content and a recipients file, and start it")
    p.add_argument("--channel", choices=("email", "push"), required=True)
    p.add_argument("--name", help="default: the recipients file's name without its extension")
    p.add_argument("--id", dest="campaign_id", metavar="<campaignId>", help="generated when absent")
    p.add_argument("--type", help="a template folder (e.g. welcome), used unless inline content is given")
    for name in (*_EMAIL_ONLY, *_PUSH_ONLY):
        p.add_argument(f"--{name}", help=f"{name} (a Jinja template rendered with each recipient's data)")
    p.add_argument("--data", metavar="<json object>", help="data every recipient shares (its own columns win)")
    p.add_argument("--priority", type=_priority, help="1 (low) to 10 (most urgent), default 1")
    p.add_argument("--send-at", help="RFC 3339 with an offset; default now")
    p.add_argument("--expires-at", help="give up on recipients not sent by then (RFC 3339 with an offset)")
    p.add_argument("--rate-limit", type=_positive, metavar="<per second>", help="at most this many sends a second")
    p.add_argument("--tenant", metavar="<name>")
    _file_args(p, required=False)
    p.add_argument("--draft", action="store_true", help="keep it a draft: add recipients, then `campaign start`")
    p.add_argument("--json", action="store_true", help="print the campaign's record as JSON")
    p.set_defaults(func=cmd_create)

    p = actions.add_parser("add", help="stream a CSV or NDJSON file's recipients into a draft")
    p.add_argument("campaign_id", metavar="<campaignId>")
    _file_args(p, required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_add)

    p = actions.add_parser("status", help="a campaign's status and its recipients by outcome")
    p.add_argument("campaign_id", metavar="<campaignId>")
    p.add_argument("--json", action="store_true", help="print the campaign's record as JSON")
    p.set_defaults(func=cmd_status)

    p = actions.add_parser("list", help="the newest campaigns first")
    p.add_argument("--limit", type=_positive, default=50)
    p.add_argument("--tenant", metavar="<name>")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    for action, help_ in (
        ("start", "start a draft (at its send time, or now)"),
        ("pause", "start no new batch; the batches in flight finish"),
        ("resume", "resume a paused campaign"),
        ("cancel", "cancel: recipients not reached yet end `cancelled`"),
    ):
        p = actions.add_parser(action, help=help_)
        p.add_argument("campaign_id", metavar="<campaignId>")
        p.set_defaults(func=cmd_control, action=action)


def _file_args(p: argparse.ArgumentParser, *, required: bool) -> None:
    files = p.add_mutually_exclusive_group(required=required)
    files.add_argument("--csv", type=Path, metavar="FILE", help="a header row; `to` (or `userId`), other columns: data")
    files.add_argument("--ndjson", type=Path, metavar="FILE", help="one JSON object a line: `to` or `userId`, data")


# -- helpers ------------------------------------------------------------------------------------------
@asynccontextmanager
async def _audited(client: Any, action: str, campaign_id: str | None, tenant: str | None) -> AsyncIterator[AuditEntry]:
    """One audit row per change, whatever its outcome, as the admin API writes them."""
    target = f"campaign:{campaign_id}" if campaign_id else None
    async with audited(client.db, cli_actor(), action, target) as entry:
        entry.tenant = tenant
        yield entry


def _json_object(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotificationValidationError([{"field": "data", "message": f"not valid JSON: {exc.msg}"}]) from None
    if not isinstance(value, dict):
        raise NotificationValidationError([{"field": "data", "message": "must be a JSON object"}])
    return value


def _upload(args: argparse.Namespace) -> tuple[Path, Callable[[AsyncIterator[bytes], str], Batches]] | None:
    if args.csv is not None:
        return args.csv, parse_csv
    if args.ndjson is not None:
        return args.ndjson, parse_ndjson
    return None


async def _open(path: Path, flag: str) -> IO[bytes]:
    try:
        return await asyncio.to_thread(path.open, "rb")
    except OSError as exc:
        message = f"cannot read {path}: {exc.strerror or type(exc).__name__}"
        raise NotificationValidationError([{"field": flag, "message": message}]) from None


async def _chunks(file: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(file.read, CHUNK):
        yield chunk


async def _close(batches: object) -> None:
    aclose = getattr(batches, "aclose", None)  # the parsers are async generators: stop reading the file
    if aclose is not None:
        await aclose()


async def _then(first: list[Recipient | RecipientError] | None, rest: Batches) -> Batches:
    if first is not None:
        yield first
    async for batch in rest:
        yield batch


def _counts(found: dict[str, Any]) -> str:
    rejected = len(found["rejected"])
    more = "+" if rejected >= REPORTED_CAP else ""  # the library stops listing there
    return f"{found['added']} added, {found['duplicates']} duplicates, {rejected}{more} rejected"


def _print_found(found: dict[str, Any]) -> None:
    print(f"recipients: {_counts(found)}")
    for item in found["rejected"][:SHOWN_REJECTED]:
        print(f"  line {item['line']}: {item['field']}: {item['message']}")
    if len(found["rejected"]) > SHOWN_REJECTED:
        print(f"  ... {len(found['rejected']) - SHOWN_REJECTED} more rejected (--json lists them)")


def _check_content(args: argparse.Namespace) -> None:
    # The payload would accept them and ignore them silently; an operator's typo should not.
    wrong, flags = ("email", _EMAIL_ONLY) if args.channel == "push" else ("push", _PUSH_ONLY)
    for name in flags:
        if getattr(args, name) is not None:
            raise NotificationValidationError([{"field": name, "message": f"is for {wrong} campaigns only"}])


# -- commands -----------------------------------------------------------------------------------------
async def cmd_create(args: argparse.Namespace) -> int:
    _check_content(args)
    upload = _upload(args)
    name = args.name or (upload[0].stem if upload else None)
    if not name:
        raise NotificationValidationError([{"field": "name", "message": "is required (--name, or a recipients file)"}])
    if upload is None and not args.draft:
        message = "give --csv or --ndjson, or --draft to add them later with `campaign add`"
        raise NotificationValidationError([{"field": "recipients", "message": message}])
    payload: dict[str, Any] = {
        "campaignId": args.campaign_id,
        "name": name,
        "channel": args.channel,
        "type": args.type,
        **{key: getattr(args, key) for key in (*_EMAIL_ONLY, *_PUSH_ONLY)},
        "data": _json_object(args.data),
        "priority": args.priority,
        "sendAt": args.send_at,
        "expiresAt": args.expires_at,
        "rateLimitPerSecond": args.rate_limit,
        "draft": True,  # the recipients come from the file next; started below unless --draft
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    file = await _open(upload[0], "csv" if args.csv else "ndjson") if upload else None

    async def create(client: Any) -> int:
        batches = upload[1](_chunks(file), args.channel) if upload and file else None
        try:
            # The first batch reads the header: a file without a `to` column fails before anything is stored.
            first = await anext(batches, None) if batches else None
            async with _audited(client, "campaigns.create", args.campaign_id, args.tenant) as audit:
                record = await client.create_campaign(payload, tenant=args.tenant, actor=cli_actor())
                cid = record["campaignId"]
                audit.target, audit.tenant = f"campaign:{cid}", record["tenant"]
                audit.details.update(campaignId=cid, channel=record["channel"])
            found = {"added": 0, "duplicates": 0, "rejected": []}
            try:
                if batches is not None:
                    found = await _add(client, cid, _then(first, batches), record["tenant"])
                if not args.draft and found["added"]:
                    async with _audited(client, "campaigns.start", cid, record["tenant"]):
                        record = await client.start_campaign(cid)
                else:
                    record = await client.campaign(cid)
            except BaseException:
                hint = f"note: campaign {cid} stays a draft: see `notifications campaign add|start|cancel {cid}`"
                print(hint, file=sys.stderr)
                raise
        finally:
            await _close(batches)
        return _created(args, record, found)

    try:
        return int(await _with_client(create))
    finally:
        if file is not None:
            file.close()


def _created(args: argparse.Namespace, record: dict[str, Any], found: dict[str, Any]) -> int:
    cid = record["campaignId"]
    if args.json:
        _print({**record, **found})
    else:
        print(f"campaign {cid}: {record['status']}")
        if _upload(args):
            _print_found(found)
    if args.draft or found["added"]:
        if args.draft and not args.json:
            print(f"start it with: notifications campaign start {cid}")
        return 0
    where = (args.csv or args.ndjson).name
    print(f"error: recipients: no valid recipient in {where}; campaign {cid} stays a draft", file=sys.stderr)
    return 2


async def _add(client: Any, cid: str, batches: Batches, tenant: str | None) -> dict[str, Any]:
    async with _audited(client, "campaigns.recipients", cid, tenant) as audit:
        found: dict[str, Any] = await client.add_campaign_recipients(cid, batches)
        audit.details.update(added=found["added"], duplicates=found["duplicates"], rejected=len(found["rejected"]))
    return found


async def cmd_add(args: argparse.Namespace) -> None:
    upload = _upload(args)
    assert upload is not None  # argparse requires one of the two

    async def add(client: Any) -> None:
        record = await client.campaign(args.campaign_id)  # its channel, and a clear error when there is none
        file = await _open(upload[0], "csv" if args.csv else "ndjson")
        try:
            found = await _add(client, args.campaign_id, upload[1](_chunks(file), record["channel"]), record["tenant"])
        finally:
            file.close()
        total = (await client.campaign(args.campaign_id))["total"]
        if args.json:
            _print({**found, "total": total})
            return
        print(f"campaign {args.campaign_id}: {total} recipients")
        _print_found(found)

    await _with_client(add)


async def cmd_status(args: argparse.Namespace) -> None:
    record = await _with_client(lambda client: client.campaign(args.campaign_id))
    if args.json:
        _print(record)
        return
    kind = f" (type {record['type']})" if record.get("type") else ""
    print(f"campaign    {record['campaignId']}: {record['name']}")
    print(f"channel     {record['channel']}{kind}")
    print(f"status      {record['status']}")
    outcomes = ", ".join(f"{record[k]} {k}" for k in ("sent", "queued", "failed", "suppressed", "expired", "cancelled"))
    print(f"recipients  {record['total']}: {outcomes}")
    if record.get("ratePerSecond") is not None or record.get("rateLimitPerSecond"):
        limit = f" (limit {record['rateLimitPerSecond']}/s)" if record.get("rateLimitPerSecond") else ""
        rate = f"{record['ratePerSecond']}/s" if record.get("ratePerSecond") is not None else "-"
        print(f"rate        {rate}{limit}")
    if record.get("etaSeconds") is not None:
        print(f"eta         {record['etaSeconds']} s")
    for key, label in (("sendAt", "send at"), ("createdAt", "created"), ("startedAt", "started")):
        if record.get(key):
            print(f"{label:<11} {record[key]}")
    if record.get("completedAt"):
        print(f"{'finished':<11} {record['completedAt']}")


async def cmd_list(args: argparse.Namespace) -> None:
    records = await _with_client(lambda client: client.campaigns(tenant=args.tenant, limit=args.limit))
    if args.json:
        _print(records)
        return
    if not records:
        print("no campaigns", file=sys.stderr)
        return
    width = max(len(r["campaignId"]) for r in records)
    print(f"{'ID':<{width}}  {'STATUS':<9}  {'CHANNEL':<7}  {'SENT/TOTAL':>13}  NAME")
    for r in records:
        sent = f"{r['sent']}/{r['total']}"
        print(f"{r['campaignId']:<{width}}  {r['status']:<9}  {r['channel']:<7}  {sent:>13}  {r['name']}")


async def cmd_control(args: argparse.Namespace) -> None:
    cid = args.campaign_id

    async def act(client: Any) -> str:
        before = await client.campaign(cid)
        if args.action == "cancel" and before["status"] in ("completed", "cancelled"):
            if before["status"] == "completed":
                raise NotificationConflictError(f"campaign {cid} is completed: nothing left to cancel")
            return f"campaign {cid} is already cancelled"
        async with _audited(client, f"campaigns.{args.action}", cid, before["tenant"]):
            record = await getattr(client, f"{args.action}_campaign")(cid)
        if args.action == "start":
            when = f" at {record['sendAt']}" if record["status"] == "scheduled" else ""
            return f"campaign {cid} started: {record['status']}{when} ({record['total']} recipients)"
        return f"{args.action} requested for campaign {cid}: {record['status']}"

    print(await _with_client(act))
