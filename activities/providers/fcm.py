"""Push through Firebase Cloud Messaging with firebase-admin (`send_each_async`, HTTP v1).

Addressing: an explicit `token` is used alone; otherwise the push goes to every
valid registered device of the user (the `devices` table). One attempt sends to
all of them concurrently in one `send_each_async` call and then decides:
- every device answered and at least one got it: `sent`, per-device outcomes in the delivery log;
- some got it and some failed transiently: that error, marked `partial`, so Temporal retries;
  the next attempt pushes only to the devices not reached (`PushMessage.reached`, from the
  delivery log's per-device outcomes), and the last one counts the push as sent;
- none did and some failure is retryable (5xx, timeout, quota): that error, so
  Temporal retries (devices that turned out dead are not retried);
- none did and every device is dead (UNREGISTERED): NO_VALID_DEVICES, permanent.
An UNREGISTERED token is marked invalid in SQL and never used again. A batch
(`send_push_batch`) sends its token pushes in one `send_each_async` call.

Retries are Temporal's alone: firebase-admin's async client retries 500/503 up to
4 times inside one call (and its sync `send` sleeps through Retry-After), so the
messaging service's HTTP client is replaced by one with retries disabled. One
Temporal attempt is one HTTP request per device, bounded by PROVIDER_TIMEOUT_SECONDS.

The App (and its httpx client, which binds to the event loop that first uses it)
is created lazily, inside the worker's event loop, one per provider and loop.
With FCM_API_URL set and no credentials, a static development token is used and
Google's OAuth endpoint is never called (local fakes, proxies that add auth).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import firebase_admin
from firebase_admin import _http_client, exceptions, messaging
from firebase_admin._retry import HttpxRetry
from sqlalchemy import select

from activities.providers.base import BatchOutcome, DeliveryResult, PushMessage, single_outcome, whole_call_failure
from activities.providers.fcm_auth import StaticCredential, load_credential
from activities.providers.httputil import retry_after_seconds
from notifications import devices
from notifications.config import Settings
from notifications.errors import CATEGORY, DeliveryError, ErrorCategory, ErrorCode, ProviderConfigurationError
from notifications.redact import mask_token
from notifications.sql.engine import Database
from notifications.sql.models import Device

log = logging.getLogger("notifications.providers.fcm")

FCM_BATCH_LIMIT = 500
_app_counter = itertools.count(1)


class FcmProvider:
    name = "fcm"
    max_batch = FCM_BATCH_LIMIT  # send_each's limit

    def __init__(self, settings: Settings, db: Database) -> None:
        self._credential, credential_project = load_credential(settings)
        project = settings.fcm_project_id or credential_project
        if not project and settings.fcm_api_url:
            project = "local-dev"
        if not project:
            raise ProviderConfigurationError("PUSH_PROVIDER=fcm needs FCM_PROJECT_ID (or credentials naming one)")
        self.project_id: str = project
        self._db = db
        self._timeout = settings.provider_timeout_seconds
        base = (settings.fcm_api_url or "https://fcm.googleapis.com").rstrip("/")
        self.endpoint = f"{base}/v1/projects/{self.project_id}/messages:send"
        self._static = isinstance(self._credential, StaticCredential)
        self._app: firebase_admin.App | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the firebase App, bound to the running loop ------------------------------------------
    def _app_for_loop(self) -> firebase_admin.App:
        loop = asyncio.get_running_loop()
        if self._app is None or self._loop is not loop:
            if self._app is not None:
                firebase_admin.delete_app(self._app)
            app = firebase_admin.initialize_app(
                self._credential,
                {"projectId": self.project_id, "httpTimeout": self._timeout},
                name=f"notifications-fcm-{next(_app_counter)}",
            )
            service = messaging._get_messaging_service(app)
            service._fcm_url = self.endpoint
            service._async_client = _http_client.HttpxAsyncClient(
                credential=service._credential,
                timeout=self._timeout,
                retry_config=HttpxRetry(max_retries=0, status_forcelist=[]),
            )
            if self._static:
                # A 401 must come back as an error, not as two more requests after a "refresh".
                service._async_client.async_client.auth._max_refresh_attempts = 0
            self._app, self._loop = app, loop
        return self._app

    async def _authorised_app(self) -> firebase_admin.App:
        """The App, its OAuth token refreshed in a thread (the SDK would do it synchronously on the loop)."""
        app = self._app_for_loop()
        credential = self._credential.get_credential()
        if not credential.valid:  # never for the static development token
            import google.auth.transport.requests

            try:
                await asyncio.to_thread(credential.refresh, google.auth.transport.requests.Request())
            except Exception as exc:
                raise DeliveryError(
                    ErrorCode.AUTH_ERROR, f"cannot obtain an FCM access token: {type(exc).__name__}"
                ) from None
        return app

    # -- sending --------------------------------------------------------------------------------
    async def send_push(self, message: PushMessage, *, idempotency_key: str) -> DeliveryResult:
        every = await self._recipients(message)
        # a device an earlier attempt reached is not pushed again
        tokens = [t for t in every if device_key(t) not in message.reached]
        outcomes: list[dict[str, Any]] = [
            {"token": mask_token(t), "key": key, "outcome": "sent", "messageId": message.reached[key], "earlier": True}
            for t in every
            if (key := device_key(t)) in message.reached
        ]
        errors: list[tuple[str, DeliveryError]] = []
        app = await self._authorised_app() if tokens else None
        for start in range(0, len(tokens), FCM_BATCH_LIMIT):
            chunk = tokens[start : start + FCM_BATCH_LIMIT]
            try:
                response = await messaging.send_each_async([_fcm_message(message, t) for t in chunk], app=app)
            except exceptions.FirebaseError as exc:  # the whole call failed before any send
                raise classify(exc) from None
            for token, item in zip(chunk, response.responses, strict=True):
                key = device_key(token)
                if item.success:
                    outcomes.append(
                        {"token": mask_token(token), "key": key, "outcome": "sent", "messageId": item.message_id}
                    )
                else:
                    error = classify(item.exception)
                    errors.append((token, error))
                    outcomes.append(
                        {
                            "token": mask_token(token),
                            "key": key,
                            "outcome": "failed",
                            "errorCode": error.code.value,
                            "error": error.message,
                        }
                    )
        return await self._conclude(message, tokens, outcomes, errors)

    async def send_push_batch(self, messages: Sequence[PushMessage], *, idempotency_key: str) -> list[BatchOutcome]:
        """Token pushes in one `send_each_async` call; user pushes by `send_push` each, concurrently."""
        app = await self._authorised_app()  # without an access token nothing goes: the whole call fails
        parts = await asyncio.gather(
            self._to_tokens(app, [m for m in messages if m.token]),
            asyncio.gather(*(single_outcome(self.send_push, m) for m in messages if not m.token)),
        )
        found = {o.notification_id: o for part in parts for o in part}
        outcomes = [found[m.notification_id] for m in messages]
        failure = whole_call_failure(outcomes)
        if failure is not None:  # nothing was sent: the batch fails as one (the breaker counts it)
            raise failure
        return outcomes

    async def _to_tokens(self, app: firebase_admin.App, messages: list[PushMessage]) -> list[BatchOutcome]:
        """One outcome per push to an explicit token; dead tokens skipped and pruned, as a single push does."""
        if not messages:
            return []
        tokens = [str(m.token) for m in messages]
        async with self._db.sessions() as session:
            dead = set(await session.scalars(select(Device.token).where(Device.token.in_(tokens), ~Device.valid)))
        outcomes = {
            m.notification_id: BatchOutcome(m.notification_id, error=_unregistered_earlier(str(m.token)))
            for m in messages
            if m.token in dead
        }
        live = [m for m in messages if m.token not in dead]
        try:
            response = await messaging.send_each_async([_fcm_message(m, str(m.token)) for m in live], app=app)
        except exceptions.FirebaseError as exc:  # the SDK's own failure, not an answer: each push failed with it
            response = messaging.BatchResponse([messaging.SendResponse(None, exc)] * len(live))
        for m, item in zip(live, response.responses, strict=True):
            if item.success:
                sent = {"token": mask_token(str(m.token)), "outcome": "sent", "messageId": item.message_id}
                result = DeliveryResult(self.name, item.message_id, {"devices": [sent], "sent": 1, "failed": 0})
                outcomes[m.notification_id] = BatchOutcome(m.notification_id, result=result)
            else:
                outcomes[m.notification_id] = BatchOutcome(m.notification_id, error=classify(item.exception))
        answered = [(str(m.token), outcomes[m.notification_id]) for m in live]
        await self._mark(
            [t for t, o in answered if o.error and o.error.code is ErrorCode.UNREGISTERED],
            [t for t, o in answered if o.result],
        )
        return [outcomes[m.notification_id] for m in messages]

    async def _mark(self, dead: list[str], sent: list[str]) -> None:
        if dead:  # never used again
            await devices.mark_invalid(self._db, dead, ErrorCode.UNREGISTERED.value)
        try:
            await devices.mark_used(self._db, sent)
        except Exception as exc:  # bookkeeping only
            log.warning("could not update device last_used_at: %s", type(exc).__name__)

    async def _recipients(self, message: PushMessage) -> list[str]:
        if message.token:
            if await devices.token_is_invalid(self._db, message.token):
                raise _unregistered_earlier(message.token)
            return [message.token]
        if not message.user_id:
            raise DeliveryError(ErrorCode.VALIDATION_ERROR, "a push needs a userId or a device token")
        tokens = await devices.valid_tokens(self._db, message.user_id, tenant=message.tenant, critical=message.critical)
        if not tokens:
            raise DeliveryError(
                ErrorCode.NO_VALID_DEVICES, f"user {message.user_id} has no valid, unsuppressed registered device"
            )
        return tokens

    async def _conclude(
        self,
        message: PushMessage,
        tokens: list[str],
        outcomes: list[dict[str, Any]],
        errors: list[tuple[str, DeliveryError]],
    ) -> DeliveryResult:
        failed = {token for token, _ in errors}
        await self._mark(
            [t for t, e in errors if e.code is ErrorCode.UNREGISTERED], [t for t in tokens if t not in failed]
        )
        sent = [o for o in outcomes if o["outcome"] == "sent"]
        details: dict[str, Any] = {"devices": outcomes, "sent": len(sent), "failed": len(errors)}
        if not sent:
            raise self._failure(message, errors, details)
        ids = [o["messageId"] for o in sent]
        message_id = ids[0] if len(ids) == 1 else f"{ids[0]} (+{len(ids) - 1} more)"
        again = [e for _, e in errors if e.retryable]
        if again:
            # Some devices have it, some failed for now: the next attempt pushes to those alone;
            # the last attempt counts the push as sent (`partial`).
            chosen = _first_to_retry(again)
            summary = f"{len(sent)} of {len(outcomes)} devices reached, {len(again)} to retry: {chosen.message}"
            raise DeliveryError(
                chosen.code,
                summary[:500],
                retry_after=chosen.retry_after,
                details={**details, "partial": True, "messageId": message_id},
            )
        return DeliveryResult(provider=self.name, provider_message_id=message_id, details=details)

    def _failure(
        self, message: PushMessage, errors: list[tuple[str, DeliveryError]], details: dict[str, Any]
    ) -> DeliveryError:
        retryable = [e for _, e in errors if e.retryable]
        if retryable:
            chosen = _first_to_retry(retryable)
            return DeliveryError(chosen.code, chosen.message, retry_after=chosen.retry_after, details=details)
        config = [e for _, e in errors if e.category is ErrorCategory.CONFIGURATION]
        if config:
            return DeliveryError(config[0].code, config[0].message, details=details)
        if all(e.code is ErrorCode.UNREGISTERED for _, e in errors):
            if message.token:
                return DeliveryError(
                    ErrorCode.UNREGISTERED,
                    f"device token {mask_token(message.token)} is not registered with FCM",
                    details=details,
                )
            return DeliveryError(
                ErrorCode.NO_VALID_DEVICES, f"every device of user {message.user_id} is unregistered", details=details
            )
        first = next(e for _, e in errors if e.code is not ErrorCode.UNREGISTERED)
        return DeliveryError(first.code, first.message, details=details)


def _first_to_retry(errors: list[DeliveryError]) -> DeliveryError:
    """Rate limits first (they carry the longest wait), then the longest Retry-After."""
    return sorted(errors, key=lambda e: (e.category is not ErrorCategory.RATE_LIMITED, -(e.retry_after or 0)))[0]


def device_key(token: str) -> str:
    """A device in the delivery log: a digest of its token (the log shows the token masked)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _fcm_message(message: PushMessage, token: str) -> messaging.Message:
    return messaging.Message(
        token=token,
        notification=messaging.Notification(title=message.title, body=message.body),
        data={**message.data, "notificationId": message.notification_id},
        **_shown_once(message.notification_id),
    )


def _unregistered_earlier(token: str) -> DeliveryError:
    return DeliveryError(ErrorCode.UNREGISTERED, f"device token {mask_token(token)} was unregistered earlier")


def _http_status(exc: exceptions.FirebaseError) -> int | None:
    response = getattr(exc, "http_response", None)
    return getattr(response, "status_code", None)


def _headers(exc: exceptions.FirebaseError) -> Mapping[str, Any] | None:
    response = getattr(exc, "http_response", None)
    return getattr(response, "headers", None)


def classify(exc: BaseException | None) -> DeliveryError:
    """One firebase-admin error -> one code of the taxonomy."""
    if not isinstance(exc, exceptions.FirebaseError):
        return DeliveryError(ErrorCode.SEND_FAILED, f"FCM call failed: {type(exc).__name__}")
    status = _http_status(exc)
    retry_after = retry_after_seconds(_headers(exc))
    text = str(exc)[:300]
    message = f"FCM {status or '-'} {exc.code}: {text}"
    details: dict[str, object] = {"httpStatus": status, "providerError": type(exc).__name__}

    def error(code: ErrorCode, honour_retry_after: bool = False) -> DeliveryError:
        return DeliveryError(code, message, retry_after=retry_after if honour_retry_after else None, details=details)

    if isinstance(exc, messaging.UnregisteredError):
        return error(ErrorCode.UNREGISTERED)
    if isinstance(exc, messaging.QuotaExceededError) or isinstance(exc, exceptions.ResourceExhaustedError):
        return error(ErrorCode.RATE_LIMITED, honour_retry_after=True)
    if isinstance(exc, messaging.SenderIdMismatchError):
        return error(ErrorCode.INVALID_RECIPIENT)
    if isinstance(exc, messaging.ThirdPartyAuthError):
        return error(ErrorCode.AUTH_ERROR)
    if isinstance(exc, exceptions.UnauthenticatedError | exceptions.PermissionDeniedError):
        return error(ErrorCode.AUTH_ERROR)
    if isinstance(exc, exceptions.InvalidArgumentError):
        lowered = text.lower()
        if "too big" in lowered or "too large" in lowered or "exceeds" in lowered:
            return error(ErrorCode.PAYLOAD_TOO_LARGE)
        return error(ErrorCode.VALIDATION_ERROR)
    if isinstance(exc, exceptions.DeadlineExceededError):
        return error(ErrorCode.TIMEOUT)
    if status is None and isinstance(exc, exceptions.UnavailableError | exceptions.UnknownError):
        return error(ErrorCode.CONNECTION_ERROR)  # no HTTP answer: refused, reset
    if isinstance(exc, exceptions.NotFoundError):
        # 404 without an FCM error code: the project or endpoint does not exist.
        return error(ErrorCode.CONFIGURATION_ERROR)
    if status == 413:
        return error(ErrorCode.PAYLOAD_TOO_LARGE)
    server_side = isinstance(exc, exceptions.UnavailableError | exceptions.InternalError)
    if (status is not None and status >= 500) or server_side:
        return error(ErrorCode.PROVIDER_UNAVAILABLE, honour_retry_after=True)
    if status is not None and 400 <= status < 500:
        return error(ErrorCode.VALIDATION_ERROR)
    code = ErrorCode.SEND_FAILED
    assert CATEGORY[code].retryable
    return error(code)


def _shown_once(notification_id: str) -> dict[str, Any]:
    """Platform settings under which a repeat of this push replaces the first on the device.

    FCM has no idempotency key: a send whose answer was lost (its worker died mid-call) goes
    again. The Android tag, the APNs collapse ID and the web notification's tag make the
    device show the repeat in place of the first, not beside it. Not Android's collapse_key:
    FCM keeps at most four of those per offline device.
    """
    tag = (
        notification_id if len(notification_id.encode()) <= 64 else hashlib.sha256(notification_id.encode()).hexdigest()
    )
    return {
        "android": messaging.AndroidConfig(notification=messaging.AndroidNotification(tag=tag)),
        "apns": messaging.APNSConfig(headers={"apns-collapse-id": tag}),
        "webpush": messaging.WebpushConfig(notification=messaging.WebpushNotification(tag=tag)),
    }
