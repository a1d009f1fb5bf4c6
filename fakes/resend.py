"""A fake Resend API: `POST /emails` and `POST /emails/batch` with Resend's auth, idempotency and error bodies.

Behaviour is scripted per recipient address (so concurrent sends stay
deterministic): each request to that address consumes the next step; with no
step left the email is accepted. Idempotency follows Resend: the same
`Idempotency-Key` with the same payload returns the first answer and sends
nothing; with another payload it is a 409 (keys are kept per route).

A batch (at most 100 emails, else 422) consumes one step of each scripted recipient
in it. A recipient's 4xx step refuses that email alone under `x-batch-validation:
permissive` (`{"data": [accepted ids], "errors": [{"index", "message"}]}`) and the
whole batch otherwise (strict, Resend's default); its 5xx or 429, a hang or a delay
acts on the whole call, as do `script_batch` steps (one per batch call) and
`outage` / `storm`. Nothing of a failed batch call is sent.
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
MAX_BATCH = 100  # Resend's limit of emails per /emails/batch call


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
    refuse_key: bool = False  # every request answers 401, as for a revoked API key
    storm: Storm | None = None  # every request answers as the storm says while it lasts
    batch_scripts: list[Step] = field(default_factory=list)  # one per batch call, before anything else
    batch_calls: int = 0  # POST /emails/batch requests that passed authentication
    _keys: dict[tuple[str, str], tuple[Any, Any]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    server: FakeHTTPServer | None = None

    def script(self, to: str, *steps: Step) -> None:
        self.scripts[to].extend(steps)

    def script_batch(self, *steps: Step) -> None:
        """The next batch calls answer these, whatever their emails (e.g. `error(503, ...)` once)."""
        self.batch_scripts.extend(steps)

    def requests_to(self, to: str) -> list[Request]:
        """Requests carrying an email to `to` (a batch counts once)."""
        return [r for r in self.requests if any(to in item.get("to", []) for item in _items(r))]

    def emails_to(self, to: str) -> list[dict[str, Any]]:
        return [e for e in self.emails.values() if to in e.get("to", [])]

    async def handle(self, request: Request) -> Response:
        self.requests.append(request)
        if request.method != "POST" or request.path not in ("/emails", "/emails/batch"):
            return Response(404, {"statusCode": 404, "name": "not_found", "message": "no such route"})
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth == "Bearer None":
            return Response(401, {"statusCode": 401, "name": "missing_api_key", "message": "Missing API key"})
        if auth != f"Bearer {self.api_key}":
            return Response(403, {"statusCode": 403, "name": "invalid_api_key", "message": "API key is invalid"})
        if self.refuse_key:
            return Response(401, {"statusCode": 401, "name": "restricted_api_key", "message": "API key is revoked"})
        if request.path == "/emails/batch":
            self.batch_calls += 1
        if self.outage:
            return Response(self.outage, {"statusCode": self.outage, "name": "application_error", "message": "outage"})
        stormy = self.storm.answer() if self.storm is not None else None
        if stormy is not None:
            return stormy
        payload = request.json()
        key = request.headers.get("idempotency-key")
        if key and (request.path, key) in self._keys:
            first_payload, answer = self._keys[(request.path, key)]
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
        if request.path == "/emails/batch":
            return await self._batch(request, payload, key)
        recipient = (payload.get("to") or [""])[0]
        steps = self.scripts.get(recipient)
        step = steps.pop(0) if steps else Step()
        if step.hang:
            await asyncio.sleep(step.hang)
            raise DropConnection
        if step.status != 200:
            return _failure(step)
        email_id = self._accept(payload)
        answer = {"id": email_id}
        if key:
            self._keys[(request.path, key)] = (payload, answer)
        if step.delay:
            await asyncio.sleep(step.delay)
        return Response(200, answer)

    async def _batch(self, request: Request, payload: Any, key: str | None) -> Response:
        if not isinstance(payload, list) or not 1 <= len(payload) <= MAX_BATCH:
            size = len(payload) if isinstance(payload, list) else "no list"
            message = f"The batch must hold between 1 and {MAX_BATCH} emails (got {size})."
            return Response(422, {"statusCode": 422, "name": "validation_error", "message": message})
        whole = self.batch_scripts.pop(0) if self.batch_scripts else Step()
        steps = []
        for item in payload:
            scripted = self.scripts.get((item.get("to") or [""])[0])
            steps.append(scripted.pop(0) if scripted else Step())
        # What acts on the whole call: the batch's own step, then any email's 5xx, 429 or hang.
        whole_call = [whole, *(s for s in steps if s.hang or s.status >= 500 or s.status == 429)]
        for step in whole_call:
            if step.hang:
                await asyncio.sleep(step.hang)
                raise DropConnection
            if step.status != 200:
                return _failure(step)
        refused = {i: s for i, s in enumerate(steps) if s.status != 200}
        permissive = request.headers.get("x-batch-validation", "strict").lower() == "permissive"
        if refused and not permissive:
            index, step = next(iter(refused.items()))
            return _failure(Step(step.status, step.name, f"emails[{index}]: {step.message}"))
        data = [{"id": self._accept(item)} for i, item in enumerate(payload) if i not in refused]
        answer: dict[str, Any] = {"data": data}
        if permissive:
            answer["errors"] = [{"index": i, "message": s.message} for i, s in refused.items()]
        if key:
            self._keys[(request.path, key)] = (payload, answer)
        delay = max([whole.delay, *(s.delay for s in steps)])
        if delay:
            await asyncio.sleep(delay)
        return Response(200, answer)

    def _accept(self, payload: dict[str, Any]) -> str:
        """The email is sent: recorded under a new ID."""
        email_id = f"re-{next(self._ids):04d}"
        self.emails[email_id] = payload
        return email_id


def _failure(step: Step) -> Response:
    headers = {"Retry-After": step.retry_after} if step.retry_after is not None else {}
    return Response(step.status, {"statusCode": step.status, "name": step.name, "message": step.message}, headers)


def _items(request: Request) -> list[dict[str, Any]]:
    """The emails a request carries: one for /emails, the list for /emails/batch."""
    try:
        body = request.json()
    except ValueError:
        return []
    items = body if isinstance(body, list) else [body]
    return [item for item in items if isinstance(item, dict)]
