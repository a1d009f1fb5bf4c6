"""A fake FCM HTTP v1 endpoint: `POST /v1/projects/<p>/messages:send` with FCM's error bodies.

Scripted per device token, so the concurrent sends of a multi-device push stay
deterministic; `unregistered` tokens always answer 404 UNREGISTERED, like a
token whose app was uninstalled.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from fakes.http import FakeHTTPServer, Request, Response, ServedFake

DEV_TOKEN = "fcm-dev-token"
_PATH = re.compile(r"^/v1/projects/([^/]+)/messages:send$")

STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass
class Step:
    status: int = 200
    error_code: str | None = None  # FcmError errorCode, e.g. UNREGISTERED, QUOTA_EXCEEDED
    message: str = "scripted failure"
    retry_after: str | None = None
    delay: float = 0.0  # answer (success) this late: the client may time out first


def error(
    status: int, error_code: str | None = None, message: str = "scripted failure", retry_after: str | None = None
) -> Step:
    return Step(status, error_code, message, retry_after)


def error_body(status: int, error_code: str | None, message: str) -> dict[str, Any]:
    body: dict[str, Any] = {"code": status, "message": message, "status": STATUS.get(status, "UNKNOWN")}
    if error_code:
        body["details"] = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code}]
    return {"error": body}


def collapse_tag(message: dict[str, Any]) -> str | None:
    """The tag a device shows a message under (Android tag or APNs collapse ID): a later message with
    the same tag replaces it, FCM's documented display rule. None: each such message shows apart."""
    tag = ((message.get("android") or {}).get("notification") or {}).get("tag")
    return tag or ((message.get("apns") or {}).get("headers") or {}).get("apns-collapse-id")


@dataclass
class FakeFCM(ServedFake):
    token: str = DEV_TOKEN
    requests: list[Request] = field(default_factory=list)
    delivered: list[dict[str, Any]] = field(default_factory=list)  # the messages FCM accepted
    scripts: dict[str, list[Step]] = field(default_factory=lambda: defaultdict(list))
    unregistered: set[str] = field(default_factory=set)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    server: FakeHTTPServer | None = None

    def script(self, device_token: str, *steps: Step) -> None:
        self.scripts[device_token].extend(steps)

    def requests_for(self, device_token: str) -> list[Request]:
        return [r for r in self.requests if (r.json() or {}).get("message", {}).get("token") == device_token]

    async def handle(self, request: Request) -> Response:
        self.requests.append(request)
        match = _PATH.match(request.path)
        if request.method != "POST" or not match:
            return Response(404, error_body(404, None, "Requested entity was not found."))
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Response(401, error_body(401, None, "Request had invalid authentication credentials."))
        message = (request.json() or {}).get("message", {})
        device = message.get("token", "")
        if device in self.unregistered:
            return Response(404, error_body(404, "UNREGISTERED", "Requested entity was not found."))
        steps = self.scripts.get(device)
        step = steps.pop(0) if steps else Step()
        if step.status != 200:
            headers = {"Retry-After": step.retry_after} if step.retry_after is not None else {}
            return Response(step.status, error_body(step.status, step.error_code, step.message), headers)
        self.delivered.append(message)
        return Response(200, {"name": f"projects/{match.group(1)}/messages/{next(self._ids)}"}, delay=step.delay)
