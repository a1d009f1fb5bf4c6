"""Serving the API with uvicorn inside an existing event loop (`notifications dev`, `notifications api`).

uvicorn normally owns the process's signals; here the caller does (the dev command stops the
worker, the API and the Temporal server together), so uvicorn's signal capture is disabled
and the server stops when the caller's stop event is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator

import uvicorn

from notifications.auth import key_set, mint_token
from notifications.client import NotificationClient
from notifications.config import Settings

log = logging.getLogger("api.server")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve(
    settings: Settings,
    stop: asyncio.Event,
    *,
    host: str | None = None,
    port: int | None = None,
    announce_token: bool = False,
) -> None:
    from api.main import create_app

    host = host or settings.api_host
    port = port or settings.api_port
    key_set(settings)  # refuses to start (production without a key) before anything listens
    sock = _bind(host, port)  # a clear error for a busy port, not uvicorn's sys.exit inside the loop
    client = await NotificationClient.connect(settings)
    app = create_app(settings, client=client)
    server = _Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", server_header=False))
    shown = f"[{host}]" if ":" in host else host
    print(f"API:       http://{shown}:{port}/docs  (admin routes under /api/admin)", flush=True)
    if announce_token:
        token = mint_token(settings, role="admin", ttl_seconds=12 * 3600, subject="dev-admin")
        print(f"Admin token (12 h): {token}", flush=True)
        from api.dashboard.signin import sign_in_link

        print(f"Dashboard: {sign_in_link(settings, f'http://{shown}:{port}')}  (signs in once)", flush=True)
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn")
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        await serving
    finally:
        stopping.cancel()
        sock.close()
        await client.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RuntimeError(f"the API cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)  # connections queue from now on: once the URL is printed, it answers
    sock.set_inheritable(True)
    return sock


async def run_dev_api(settings: Settings, stop: asyncio.Event) -> None:
    """The `notifications dev` service: the API on API_HOST:API_PORT, with an admin token printed."""
    await serve(settings, stop, announce_token=not settings.is_production)
