"""The OpenAPI schema fuzzed with schemathesis: valid and invalid inputs, never a 5xx.

The app runs under uvicorn in the test's event loop (its Temporal client and database are
bound to that loop); schemathesis drives it over real HTTP from a thread. Bounded by a
small `max_examples` per operation and mode so the whole run stays in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from typing import Any

import hypothesis
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given
from schemathesis.generation import GenerationMode

from api.main import create_app
from notifications.client import NotificationClient
from tests.support.api import api_settings, auth
from tests.support.system import System

MAX_EXAMPLES = 12


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


def _fuzz(schema_dict: dict[str, Any], base_url: str, headers: dict[str, str]) -> tuple[list[str], Counter[str]]:
    """Runs in a thread: every operation, positive and negative cases; returns the 5xx found."""
    schema = schemathesis.openapi.from_dict(schema_dict)
    failures: list[str] = []
    seen: Counter[str] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid schema raises here
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis.settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
                phases=[hypothesis.Phase.generate],
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                response = case.call(base_url=base_url, headers=headers, timeout=15)
                seen[f"{case.method} {case.operation.path} {response.status_code // 100}xx"] += 1
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}"
                    )

            check()
    return failures, seen


async def test_openapi_schema_fuzzed_without_5xx(system: System) -> None:
    settings = api_settings(system, api_rate_limit=100_000)
    app = create_app(settings, client=NotificationClient(system.temporal, system.db, settings))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _QuietServer(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with system.worker():
            while not server.started:
                await asyncio.sleep(0.02)
            failures, seen = await asyncio.to_thread(_fuzz, app.openapi(), f"http://127.0.0.1:{port}", auth())
    finally:
        server.should_exit = True
        await serving
        sock.close()
    assert failures == []
    operations = {k.rsplit(" ", 1)[0] for k in seen}
    assert len(operations) == len([m for p in app.openapi()["paths"].values() for m in p])
    assert any(k.endswith("2xx") and "/queues/health" in k for k in seen), seen  # healthy while fuzzed
    assert sum(n for k, n in seen.items() if k.endswith("2xx")) >= 20, seen
