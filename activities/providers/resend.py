"""Email through Resend with the official SDK, on the event loop (`Emails.send_async`).

Every send carries the notification ID as `Idempotency-Key`: Resend keeps keys for
24 h, so a retry after a timeout or a worker crash returns the first email's ID
instead of sending a second email.

The SDK keeps its configuration in module globals (`resend.api_key`, `resend.api_url`,
the async HTTP client). This provider sets the key and URL right before each call,
with no await in between, so two providers in one process (tests, a migration)
cannot see each other's settings; the SDK reads them synchronously before its
first await. The HTTP client the SDK uses is ours: it pools connections per
provider (the SDK's default opens one client per email), bounds every call by
PROVIDER_TIMEOUT_SECONDS, and tells timeouts from refused connections, which the
SDK would otherwise fold into one "HttpClientError" with code 500.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import resend
from resend.exceptions import ResendError
from resend.http_client_async import AsyncHTTPClient

from activities.providers.base import BatchOutcome, DeliveryResult, EmailMessage
from activities.providers.httputil import code_for_status, retry_after_seconds, scrub_addresses
from notifications.config import Settings
from notifications.errors import DeliveryError, ErrorCode, ProviderConfigurationError

log = logging.getLogger("notifications.providers.resend")

_current_client: contextvars.ContextVar[httpx.AsyncClient | None] = contextvars.ContextVar(
    "resend_http_client", default=None
)


class _TransportError(ResendError):
    """No HTTP answer at all: `kind` is "timeout" or "connection"."""

    def __init__(self, kind: str, message: str, *, sent: bool) -> None:
        super().__init__(code=0, error_type=kind, message=message, suggested_action="retry later")
        self.kind = kind
        self.sent = sent  # the request went out: Resend may have sent the email (an ambiguous outcome)


# No answer, though the request (or part of it) was sent: only the idempotency key tells what happened.
_AFTER_SENDING = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


class _RoutingHTTPClient(AsyncHTTPClient):
    """The SDK's async HTTP client: sends through the calling provider's pooled httpx client."""

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        json: dict[str, object] | list[object] | None = None,
        files: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
    ) -> tuple[bytes, int, Mapping[str, str]]:
        client = _current_client.get()
        if client is None:  # someone else in the process uses the SDK directly
            async with httpx.AsyncClient(timeout=30) as fallback:
                return await self._send(fallback, method, url, headers, json, files, data)
        return await self._send(client, method, url, headers, json, files, data)

    @staticmethod
    async def _send(
        client: httpx.AsyncClient,
        method: str,
        url: str,
        headers: Mapping[str, str],
        json: Any,
        files: Any,
        data: Any,
    ) -> tuple[bytes, int, Mapping[str, str]]:
        try:
            if files is not None:
                resp = await client.request(method, url, headers=headers, files=files, data=data)
            else:
                resp = await client.request(
                    method, url, headers=headers, json=json if data is None else None, data=data
                )
        except httpx.TimeoutException as exc:
            sent = isinstance(exc, _AFTER_SENDING)
            raise _TransportError(
                "timeout", f"no answer from Resend in time ({type(exc).__name__})", sent=sent
            ) from exc
        except httpx.RequestError as exc:
            sent = isinstance(exc, _AFTER_SENDING)
            raise _TransportError("connection", f"cannot reach Resend ({type(exc).__name__})", sent=sent) from exc
        return resp.content, resp.status_code, resp.headers


_ROUTER = _RoutingHTTPClient()


def _install_router() -> None:
    if resend.default_async_http_client is not _ROUTER:
        resend.default_async_http_client = _ROUTER


class ResendProvider:
    name = "resend"
    max_batch = 100  # Resend's limit per /emails/batch call (the SDK does not check it)

    def __init__(self, settings: Settings) -> None:
        if settings.resend_api_key is None or not settings.resend_api_key.get_secret_value().strip():
            raise ProviderConfigurationError("EMAIL_PROVIDER=resend needs RESEND_API_KEY")
        if not settings.mail_from:
            raise ProviderConfigurationError("EMAIL_PROVIDER=resend needs MAIL_FROM")
        if not settings.resend_api_url.startswith(("http://", "https://")):
            raise ProviderConfigurationError("RESEND_API_URL must be an http(s) URL")
        self._api_key = settings.resend_api_key.get_secret_value().strip()
        self._api_url = settings.resend_api_url.rstrip("/")
        self._timeout = settings.provider_timeout_seconds
        self._client: httpx.AsyncClient | None = None
        _install_router()

    def _http(self) -> httpx.AsyncClient:
        # Created on first use, i.e. inside the worker's event loop it will serve.
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self._timeout))
        return self._client

    async def send_email(self, message: EmailMessage, *, idempotency_key: str) -> DeliveryResult:
        response = await self._post(resend.Emails.send_async, _params(message), {"idempotency_key": idempotency_key})
        message_id = response.get("id") if isinstance(response, Mapping) else None
        if not message_id:
            raise DeliveryError(ErrorCode.SEND_FAILED, "Resend accepted the request but returned no email ID")
        return DeliveryResult(provider=self.name, provider_message_id=str(message_id))

    async def send_email_batch(self, messages: Sequence[EmailMessage], *, idempotency_key: str) -> list[BatchOutcome]:
        """One `/emails/batch` call in permissive mode: the emails Resend refuses are refused alone,
        the others sent. The key covers the whole batch: a repeat returns the first answer."""
        options = {"idempotency_key": idempotency_key, "batch_validation": "permissive"}
        response = await self._post(resend.Batch.send_async, [_params(m) for m in messages], options)
        return self._outcomes(messages, response)

    async def _post(self, call: Any, params: Any, options: dict[str, str]) -> Any:
        token = _current_client.set(self._http())
        try:
            resend.api_key = self._api_key
            resend.api_url = self._api_url
            return await call(params, options=options)
        except ResendError as exc:
            raise classify(exc) from None
        finally:
            _current_client.reset(token)

    def _outcomes(self, messages: Sequence[EmailMessage], response: Any) -> list[BatchOutcome]:
        data = response.get("data") if isinstance(response, Mapping) else None
        errors = (response.get("errors") if isinstance(response, Mapping) else None) or []
        rejected: dict[int, str] = {}
        for item in errors:
            index = item.get("index") if isinstance(item, Mapping) else None
            if isinstance(index, int) and 0 <= index < len(messages):
                rejected[index] = str(item.get("message") or "rejected")
        ids = [str(d.get("id")) if isinstance(d, Mapping) and d.get("id") else None for d in data or []]
        # `data` lists the accepted emails only, in their order: without one ID per accepted email
        # there is no telling which got which, so the batch's answer is unusable as a whole.
        if len(ids) != len(messages) - len(rejected) or len(rejected) != len(errors) or None in ids:
            raise DeliveryError(
                ErrorCode.SEND_FAILED,
                f"Resend answered a batch of {len(messages)} with {len(ids)} email IDs and {len(rejected)} errors",
            )
        accepted = iter(ids)
        outcomes = []
        for index, message in enumerate(messages):
            if index in rejected:
                error = rejection(rejected[index])
                outcomes.append(BatchOutcome(message.notification_id, error=error))
            else:
                result = DeliveryResult(provider=self.name, provider_message_id=next(accepted))
                outcomes.append(BatchOutcome(message.notification_id, result=result))
        return outcomes

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _params(message: EmailMessage) -> dict[str, Any]:
    params: dict[str, Any] = {"from": message.sender, "to": [message.to], "subject": message.subject}
    if message.html:
        params["html"] = message.html
    if message.text:
        params["text"] = message.text
    if message.headers:
        params["headers"] = dict(message.headers)
    return params


def rejection(text: str) -> DeliveryError:
    """One email refused inside a permissive batch: Resend validated it, so it is permanent."""
    message = scrub_addresses(f"Resend refused this email of the batch: {text}")[:500]
    details: dict[str, object] = {"httpStatus": 422, "providerError": "batch_validation"}
    if "`to`" in text or "recipient" in text.lower():
        return DeliveryError(ErrorCode.INVALID_RECIPIENT, message, details=details)
    return DeliveryError(ErrorCode.VALIDATION_ERROR, message, details=details)


def classify(exc: ResendError) -> DeliveryError:
    """One Resend error -> one code of the taxonomy (by HTTP status and error name, not by class)."""
    if isinstance(exc, _TransportError):
        code = ErrorCode.TIMEOUT if exc.kind == "timeout" else ErrorCode.CONNECTION_ERROR
        return DeliveryError(code, exc.message, details={"ambiguous": exc.sent})
    try:
        status = int(exc.code)
    except (TypeError, ValueError):
        status = 500
    name = str(exc.error_type or "").lower()
    text = str(exc.message or "")
    message = scrub_addresses(f"Resend {status} {name}: {text}")[:500]
    retry_after = retry_after_seconds(exc.headers)
    details: dict[str, object] = {"httpStatus": status, "providerError": name}
    if status == 0 or name == "httpclienterror":
        return DeliveryError(ErrorCode.CONNECTION_ERROR, message, details=details)
    if status == 409:
        if "concurrent" in name:  # the first attempt with this key is still being processed
            return DeliveryError(ErrorCode.PROVIDER_UNAVAILABLE, message, retry_after=retry_after, details=details)
        return DeliveryError(ErrorCode.IDEMPOTENCY_CONFLICT, message, details=details)
    if status == 403 and name != "invalid_api_key":
        # e.g. an unverified sending domain: nothing a retry would fix, an operator must.
        return DeliveryError(ErrorCode.CONFIGURATION_ERROR, message, details=details)
    if status in (400, 422):
        if name == "invalid_from_address":
            return DeliveryError(ErrorCode.CONFIGURATION_ERROR, message, details=details)
        if "`to`" in text or "recipient" in text.lower():
            return DeliveryError(ErrorCode.INVALID_RECIPIENT, message, details=details)
    code = code_for_status(status)
    return DeliveryError(
        code, message, retry_after=retry_after if code.value in _HONOUR_RETRY_AFTER else None, details=details
    )


_HONOUR_RETRY_AFTER = {ErrorCode.RATE_LIMITED.value, ErrorCode.PROVIDER_UNAVAILABLE.value, ErrorCode.TIMEOUT.value}
