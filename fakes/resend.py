"""A fake Resend API: `POST /emails` with Resend's auth, idempotency and error bodies.

Behaviour is scripted per recipient address (so concurrent sends stay
deterministic): each request to that address consumes the next step; with no
step left the email is accepted. Idempotency follows Resend: the same
`Idempotency-Key` with the same payload returns the first answer and sends
nothing; with another payload it is a 409.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from fakes.http import DropConnection, FakeHTTPServer, Request, Response, ServedFake

API_KEY = "re_test_key"


@dataclass
class Step:
    status: int = 200
    name: str = ""
    message: str = "scripted failure"
    retry_after: str | None = None
    delay: float = 0.0  # accept the email, then answer this late (the client times out)
    hang: float = 0.0  # accept nothing, answer nothing: wait, then drop the connection


def error(status: int, name: str, message: str = "scripted failure", retry_after: str | None = None) -> Step:
    return Step(status=status, name=name, message=message, retry_after=retry_after)


@dataclass
class Storm:
    """An outage in two phases from `started` (time.monotonic()): every request answers 503 for
    `unavailable_s`, then 429 with `Retry-After` for `rate_limited_s`; accepted afterwards."""

    unavailable_s: float
    rate_limited_s: float
    retry_after_s: int = 2
    started: float = field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        return self.unavailable_s + self.rate_limited_s

    def answer(self) -> Response | None:
        elapsed = time.monotonic() - self.started
        if elapsed < self.unavailable_s:
            return Response(503, {"statusCode": 503, "name": "application_error", "message": "storm: unavailable"})
        if elapsed < self.seconds:
            body = {"statusCode": 429, "name": "rate_limit_exceeded", "message": "storm: too many requests"}
            return Response(429, body, {"Retry-After": str(self.retry_after_s)})
        return None


@dataclass
class FakeResend(ServedFake):
    api_key: str = API_KEY
    requests: list[Request] = field(default_factory=list)
    emails: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> payload: what was "sent"
    scripts: dict[str, list[Step]] = field(default_factory=lambda: defaultdict(list))
    outage: int | None = None  # every request answers this 5xx while set
    storm: Storm | None = None  # every request answers as the storm says while it lasts
    _keys: dict[str, tuple[Any, dict[str, Any]]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    server: FakeHTTPServer | None = None

    def script(self, to: str, *steps: Step) -> None:
        self.scripts[to].extend(steps)

    def requests_to(self, to: str) -> list[Request]:
        return [r for r in self.requests if to in (r.json() or {}).get("to", [])]

    def emails_to(self, to: str) -> list[dict[str, Any]]:
        return [e for e in self.emails.values() if to in e.get("to", [])]

    async def handle(self, request: Request) -> Response:
        self.requests.append(request)
        if request.method != "POST" or request.path != "/emails":
            return Response(404, {"statusCode": 404, "name": "not_found", "message": "no such route"})
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth == "Bearer None":
            return Response(401, {"statusCode": 401, "name": "missing_api_key", "message": "Missing API key"})
        if auth != f"Bearer {self.api_key}":
            return Response(403, {"statusCode": 403, "name": "invalid_api_key", "message": "API key is invalid"})
        if self.outage:
            return Response(self.outage, {"statusCode": self.outage, "name": "application_error", "message": "outage"})
        stormy = self.storm.answer() if self.storm is not None else None
        if stormy is not None:
            return stormy
        payload = request.json()
        key = request.headers.get("idempotency-key")
        if key and key in self._keys:
            first_payload, answer = self._keys[key]
            if first_payload != payload:
                return Response(
                    409,
                    {
                        "statusCode": 409,
                        "name": "invalid_idempotent_request",
                        "message": "Same idempotency key used with a different request payload",
                    },
                )
            return Response(200, answer)
        recipient = (payload.get("to") or [""])[0]
        steps = self.scripts.get(recipient)
        step = steps.pop(0) if steps else Step()
        if step.hang:
            await asyncio.sleep(step.hang)
            raise DropConnection
        if step.status != 200:
            headers = {"Retry-After": step.retry_after} if step.retry_after is not None else {}
            return Response(
                step.status, {"statusCode": step.status, "name": step.name, "message": step.message}, headers
            )
        email_id = f"re-{next(self._ids):04d}"
        self.emails[email_id] = payload
        answer = {"id": email_id}
        if key:
            self._keys[key] = (payload, answer)
        if step.delay:
            await asyncio.sleep(step.delay)
        return Response(200, answer)
