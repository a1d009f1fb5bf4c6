"""two-api-processes: one admin's queue operations spread over two API processes sharing a database.

Both run with API_RATE_LIMIT=N (20; quick 5) per 60 s window. The operator's script alternates
between them, pausing and resuming the email queue three times N times: exactly N may pass, in
total, not N per process; every refusal is a 429 with Retry-After.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from chaos.harness import harness
from chaos.options import ChaosOptions
from chaos.scenarios.common import timeline

ROUTE = "/api/admin/notifications/queues/{action}"


async def run(opts: ChaosOptions, base: Path) -> dict[str, Any]:
    async with harness("two-api-processes", base) as h:
        limit = opts.api_rate_limit
        env = {"API_RATE_LIMIT": str(limit), "API_RATE_LIMIT_WINDOW_SECONDS": "60"}
        apis = [await h.start_api(**env), await h.start_api(**env)]
        headers = {"Authorization": f"Bearer {h.token('admin')}"}
        answers: list[tuple[int, int, str | None]] = []  # (process, status, Retry-After)
        started = time.time()
        async with httpx.AsyncClient(timeout=30) as http:
            for i in range(3 * limit):
                api = apis[i % 2]
                action = "pause" if (i // 2) % 2 == 0 else "resume"
                body = {"queue": "email", "reason": "chaos: two API processes"}
                resp = await http.post(api.url + ROUTE.format(action=action), headers=headers, json=body)
                answers.append((i % 2, resp.status_code, resp.headers.get("retry-after")))
            # leave the queue as it was
        # the queue is left as it was, not through the limited route
        await (await h.client()).resume_queue("email", actor="chaos")
        allowed = [a for a in answers if 200 <= a[1] < 300]
        refused = [a for a in answers if a[1] == 429]
        out = {
            "label": f"API_RATE_LIMIT={limit}, 2 processes",
            "operations": len(answers),
            "rate_limit": limit,
            "allowed": len(allowed),
            "allowed_by_process": {str(p): n for p, n in sorted(Counter(p for p, _, _ in allowed).items())},
            "refused_429": len(refused),
            "refused_without_retry_after": sum(1 for _, _, ra in refused if not ra),
            "http_status": {str(k): v for k, v in sorted(Counter(s for _, s, _ in answers).items())},
            "limit_held": len(allowed) == limit,
            "timeline": timeline(started=started, ended=time.time()),
        }
        return {"runs": [out]}
