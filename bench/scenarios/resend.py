"""`resend`: emails through the Resend SDK against the fake Resend API the provider tests use too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.options import BenchOptions
from bench.scenarios.ours import run_ours

RESEND_TEST_KEY = "re_bench_key"


async def run_resend(opts: BenchOptions, base: Path) -> dict[str, Any]:
    """`ours` with the Resend provider, email only; the fake counts the emails it accepted."""
    from fakes.resend import FakeResend

    async with FakeResend(api_key=RESEND_TEST_KEY) as fake:
        result = await run_ours(
            opts,
            base,
            "ours_resend",
            n=opts.other_n,
            latency_ms=0,
            email_concurrency=opts.email_concurrency,
            push_concurrency=opts.push_concurrency,
            channels=("email",),
            worker_env={"EMAIL_PROVIDER": "resend", "RESEND_API_KEY": RESEND_TEST_KEY, "RESEND_API_URL": fake.url},
            extra={"provider": "resend SDK -> local fake Resend API (fakes/resend.py)"},
        )
        result["fake_resend_emails"] = len(fake.emails)
    return result
