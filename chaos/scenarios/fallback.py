"""channel-fallback: pushes to users whose every device is dead, each with an email to fall back on.

FCM answers UNREGISTERED for each of their tokens, so every push ends `failed` NO_VALID_DEVICES;
each must then send its fallback email (`<id>-fallback-email`) exactly once, through Resend, and
the two records must name each other.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

from chaos.counting import deliveries
from chaos.harness import harness
from chaos.options import ChaosOptions
from chaos.scenarios.common import timeline, until

DOMAIN = "fallback.chaos.example.com"


async def run(opts: ChaosOptions, base: Path) -> dict[str, Any]:
    async with harness("channel-fallback", base) as h:
        await h.start_worker()
        client = await h.client()
        users = [f"cf-user-{i}" for i in range(opts.failover_burst)]
        for user in users:
            for device in ("a", "b"):
                token = f"tok-{user}-{device}"
                await client.register_device(user, token, platform="android")
                h.fcm.unregistered.add(token)
        started = time.time()
        accepted: dict[str, str] = {}  # push ID -> fallback address
        refused = 0
        for i, user in enumerate(users):
            address = f"{user}@{DOMAIN}"
            payload = {
                "notificationId": f"cf-{i}",
                "userId": user,
                "title": "Your results",
                "message": "are ready",
                "fallback": {"email": {"to": address, "subject": "Your results", "text": "are ready"}},
            }
            try:
                record = await client.enqueue_push(payload)
            except Exception:
                refused += 1
                continue
            accepted[record.notification_id] = address
            await asyncio.sleep(1 / opts.fault_rate)

        def all_fell_back() -> bool:
            found = deliveries(h.resend, h.fcm)
            return all(found.get(address) for address in accepted.values())

        settled = await until(all_fell_back, limit_s=opts.settle_s, interval=0.25)
        await asyncio.sleep(1.0)  # a repeated fallback would arrive by now
        found = deliveries(h.resend, h.fcm)
        rows = await _rows(client, list(accepted))
        per_address = Counter({a: len(found.get(a, [])) for a in accepted.values()})
        out = {
            "label": f"{len(users)} users, every device dead",
            "enqueued": len(users),
            "accepted": len(accepted),
            "refused": refused,
            "pushes_failed": sum(1 for nid in accepted if rows.get(nid, {}).get("status") == "failed"),
            "push_error_codes": dict(Counter(rows.get(nid, {}).get("error_code") for nid in accepted)),
            "pushes_delivered": sum(1 for ex in h.fcm.exchanges if ex.response.status == 200),
            "fallback_emails": sum(1 for n in per_address.values() if n >= 1),
            "fallback_duplicated": sum(1 for n in per_address.values() if n > 1),
            "fallback_linked": sum(1 for nid in accepted if _linked(rows, nid)),
            "all_fell_back": settled,
            "timeline": timeline(started=started, ended=time.time()),
        }
        return {"runs": [out]}


def _linked(rows: dict[str, dict[str, Any]], nid: str) -> bool:
    email = rows.get(nid, {}).get("fallback_id")
    return isinstance(email, str) and rows.get(email, {}).get("fallback_of") == nid


async def _rows(client: Any, push_ids: list[str]) -> dict[str, dict[str, Any]]:
    from sqlalchemy import or_, select

    from notifications.sql.models import Notification

    columns = (Notification.id, Notification.status, Notification.error_code, Notification.fallback_id)
    async with client.db.sessions() as session:
        found = await session.execute(
            select(*columns, Notification.fallback_of).where(
                or_(Notification.id.in_(push_ids), Notification.fallback_of.in_(push_ids))
            )
        )
        return {
            nid: {"status": status, "error_code": code, "fallback_id": fid, "fallback_of": of}
            for nid, status, code, fid, of in found
        }
