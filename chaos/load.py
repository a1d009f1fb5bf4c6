"""The callers: every enqueue, through the Python client or over HTTP, written down with its answer.

Each enqueue has its own recipient (an email address or a push token), so what the provider
received maps back to exactly one enqueue whether or not the caller passed a notificationId.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from chaos.harness import Api

EMAIL_DOMAIN = "chaos.example.com"


@dataclass
class Enqueue:
    seq: int
    channel: str  # email | push
    recipient: str  # the email address or the push token, unique per enqueue
    via: str  # client | http
    notification_id: str | None = None  # passed by the caller; None: the system generates one
    started: float = 0.0  # epoch seconds
    finished: float = 0.0
    accepted: bool | None = None  # None: no answer (yet)
    returned_id: str | None = None
    error: str | None = None  # the exception's type, or "HTTP <status>"
    causes: str | None = None  # the types of the exceptions behind it (no messages: they may hold addresses)
    http_status: int | None = None
    retry_after: str | None = None  # the Retry-After header of an HTTP refusal

    @property
    def id(self) -> str | None:
        return self.returned_id or self.notification_id

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "chaos", "userId": f"u{self.seq}"}
        if self.channel == "email":
            body.update(to=self.recipient, subject=f"Chaos {self.seq}", html=f"<p>{self.seq}</p>", text=str(self.seq))
        else:
            body.update(token=self.recipient, title=f"Chaos {self.seq}", message=str(self.seq))
        if self.notification_id:
            body["notificationId"] = self.notification_id
        return body


class Ledger:
    """Every enqueue of one run, in order."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.entries: list[Enqueue] = []

    def plan(self, channel: str, *, via: str = "client", with_id: bool = False) -> Enqueue:
        seq = len(self.entries) + 1
        recipient = f"c{self.tag}-{seq}@{EMAIL_DOMAIN}" if channel == "email" else f"tok-{self.tag}-{seq}"
        entry = Enqueue(seq, channel, recipient, via, f"{self.tag}-{seq}" if with_id else None)
        self.entries.append(entry)
        return entry

    def mix(
        self, channels: Sequence[str] = ("email", "push"), *, via: Sequence[str] = ("client",), id_every: int = 4
    ) -> Iterator[Enqueue]:
        """Endless plans alternating channels and callers; one in `id_every` carries a notificationId."""
        for i in itertools.count():
            yield self.plan(
                channels[i % len(channels)], via=via[i % len(via)], with_id=id_every > 0 and i % id_every == 0
            )

    @property
    def accepted(self) -> list[Enqueue]:
        return [e for e in self.entries if e.accepted]

    @property
    def refused(self) -> list[Enqueue]:
        return [e for e in self.entries if not e.accepted]


class Caller:
    """Sends planned enqueues through a NotificationClient, or to the API with a service token."""

    def __init__(self, client: Any, *, api: Api | None = None, timeout: float = 10.0) -> None:
        import httpx

        self.client = client
        self.api = api
        self.timeout = timeout
        self.http = httpx.AsyncClient(timeout=timeout) if api else None

    async def send(self, e: Enqueue) -> Enqueue:
        e.started = time.time()
        try:
            async with asyncio.timeout(self.timeout):
                if e.via == "http":
                    await self._post(e)
                else:
                    enqueue = self.client.enqueue_email if e.channel == "email" else self.client.enqueue_push
                    record = await enqueue(e.payload())
                    e.accepted, e.returned_id = True, record.notification_id
        except Exception as exc:  # a caller told "failed", whatever the reason: recorded by type
            e.accepted, e.error, e.causes = False, type(exc).__name__, _causes(exc)
        finally:
            e.finished = time.time()
        return e

    async def _post(self, e: Enqueue) -> None:
        assert self.http is not None and self.api is not None
        resp = await self.http.post(
            f"{self.api.url}/api/notifications/{e.channel}",
            json=e.payload(),
            headers={"Authorization": f"Bearer {self.api.token}"},
        )
        e.http_status = resp.status_code
        if 200 <= resp.status_code < 300:
            e.accepted, e.returned_id = True, resp.json().get("notificationId")
        else:
            e.accepted, e.error = False, f"HTTP {resp.status_code}"
            e.retry_after = resp.headers.get("retry-after")

    async def aclose(self) -> None:
        if self.http is not None:
            await self.http.aclose()


def _causes(exc: BaseException) -> str | None:
    names: list[str] = []
    inner = exc.__cause__ or exc.__context__
    while inner is not None and len(names) < 4:
        names.append(f"{type(inner).__module__}.{type(inner).__name__}")
        inner = inner.__cause__ or inner.__context__
    return " <- ".join(names) or None


async def at_rate(
    caller: Caller,
    plans: Iterator[Enqueue],
    *,
    rate: float,
    count: int | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Start one enqueue every 1/rate s (each its own task, none waits for another) until `count`
    or `stop`; returns when every one has its answer (each is bounded by the caller's timeout)."""
    tasks: list[asyncio.Task[Enqueue]] = []
    interval = 1.0 / rate
    due = time.monotonic()
    try:
        while (count is None or len(tasks) < count) and not (stop is not None and stop.is_set()):
            tasks.append(asyncio.create_task(caller.send(next(plans))))
            due += interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        await asyncio.gather(*tasks)
    finally:  # cancelled (Ctrl-C, the scenario's time limit): no enqueue outlives the run
        for task in tasks:
            task.cancel()
