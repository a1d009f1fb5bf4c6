"""A tiny asyncio HTTP/1.1 server: enough of the protocol for the SDKs' httpx clients.

Written by hand (no framework) so a handler can do what real outages do: answer
late, answer with any status and headers, or drop the connection.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Self

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    410: "Gone",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    peer_port: int = 0  # the client's TCP port: tells which process sent it

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (the client may give up first)


@dataclass
class Exchange:
    """One request a fake answered: when it arrived (epoch seconds), the request and the answer."""

    at: float
    request: Request
    response: Response


class DropConnection(Exception):
    """Raised by a handler to close the connection without an answer."""


Handler = Callable[[Request], Awaitable[Response]]


class FakeHTTPServer:
    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeHTTPServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2)
            except TimeoutError:
                pass

    async def __aenter__(self) -> FakeHTTPServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        peer_port = int(peer[1]) if peer else 0
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    raw = await reader.readline()
                    if raw in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = raw.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                body = await reader.readexactly(length) if length else b""
                try:
                    response = await self._handler(Request(method, path, headers, body, peer_port))
                except DropConnection:
                    return
                if response.delay:
                    await asyncio.sleep(response.delay)
                payload = b"" if response.body is None else json.dumps(response.body).encode()
                head = [
                    f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Status')}",
                    "Content-Type: application/json",
                    f"Content-Length: {len(payload)}",
                    "Connection: keep-alive",
                ]
                head += [f"{k}: {v}" for k, v in response.headers.items()]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            writer.close()


class ServedFake:
    """The serving half every fake provider shares: `async with Fake() as fake:` then `fake.url`.

    Every request is recorded with its arrival time (`exchanges`), so a test or the chaos suite
    can count what the provider saw, and when, without scripting anything.
    """

    server: FakeHTTPServer | None

    async def handle(self, request: Request) -> Response:
        raise NotImplementedError

    @property
    def exchanges(self) -> list[Exchange]:
        """Every request answered so far, in order of answer."""
        found: list[Exchange] = self.__dict__.setdefault("_exchanges", [])
        return found

    @property
    def pending(self) -> list[Request]:
        """Requests that arrived and are not answered yet."""
        found: list[Request] = self.__dict__.setdefault("_pending", [])
        return found

    @property
    def in_flight(self) -> int:
        return len(self.pending)

    async def _recorded(self, request: Request) -> Response:
        at = time.time()
        self.pending.append(request)
        try:
            response = await self.handle(request)
            if response.delay:  # waited here rather than in the server, so `pending` covers it
                await asyncio.sleep(response.delay)
                response = replace(response, delay=0.0)
        finally:
            self.pending[:] = [r for r in self.pending if r is not request]
        self.exchanges.append(Exchange(at, request, response))
        return response

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    async def __aenter__(self) -> Self:
        self.server = await FakeHTTPServer(self._recorded).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        await self.server.stop()
