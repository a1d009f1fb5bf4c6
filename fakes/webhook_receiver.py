"""A customer's webhook endpoint: verifies each request with the `standardwebhooks` library, as a
receiver would, and answers what the test scripts (200 by default)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from fakes.http import Request, Response, ServedFake


@dataclass
class WebhookReceiver(ServedFake):
    secret: str = ""
    answers: list[int] = field(default_factory=list)  # status codes for the next requests, in order
    verified: list[dict[str, Any]] = field(default_factory=list)  # the bodies whose signature held
    accepted: list[dict[str, Any]] = field(default_factory=list)  # ... and that were answered 2xx
    refused: int = 0
    delay: float = 0.0  # seconds before each answer: a slow endpoint
    ids: list[str] = field(default_factory=list)  # webhook-id of every request, verified or not

    async def handle(self, request: Request) -> Response:
        self.ids.append(request.headers.get("webhook-id", ""))
        try:
            body = Webhook(self.secret).verify(request.body, request.headers)
        except WebhookVerificationError:
            self.refused += 1
            return Response(401, {"error": "bad signature"})
        self.verified.append(body)
        status = self.answers.pop(0) if self.answers else 200
        if status < 300:
            self.accepted.append(body)  # before the delay: a sender killed meanwhile will send it again
        return Response(status, {"ok": status < 300}, delay=self.delay)

    def of(self, notification_id: str) -> list[dict[str, Any]]:
        """What the endpoint accepted about one notification, in the order it came."""
        return [body for body in self.accepted if body["data"]["notificationId"] == notification_id]
