"""Push through Firebase Cloud Messaging with firebase-admin (`send_each_async`, HTTP v1).

Addressing: an explicit `token` is used alone; otherwise the push goes to every
valid registered device of the user (the `devices` table). One attempt sends to
all of them concurrently in one `send_each_async` call and then decides:
- at least one device got it: `sent`, per-device outcomes in the delivery log;
- none did and some failure is retryable (5xx, timeout, quota): that error, so
  Temporal retries (devices that turned out dead are not retried);
- none did and every device is dead (UNREGISTERED): NO_VALID_DEVICES, permanent.
An UNREGISTERED token is marked invalid in SQL and never used again.

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
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import firebase_admin
import google.auth.credentials
from firebase_admin import _http_client, credentials, exceptions, messaging
from firebase_admin._retry import HttpxRetry

from activities.providers.base import DeliveryResult, PushMessage
from activities.providers.httputil import retry_after_seconds
from notifications import devices
from notifications.config import Settings
from notifications.errors import CATEGORY, DeliveryError, ErrorCategory, ErrorCode, ProviderConfigurationError
from notifications.redact import mask_token
from notifications.sql.engine import Database

log = logging.getLogger("notifications.providers.fcm")

FCM_BATCH_LIMIT = 500
DEV_TOKEN = "fcm-dev-token"
_app_counter = itertools.count(1)


class StaticTokenCredentials(google.auth.credentials.Credentials):  # type: ignore[misc]
    """A bearer token that never expires and never refreshes: no OAuth call, ever."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.expiry = None

    def refresh(self, request: Any) -> None:
        return None

    @property
    def expired(self) -> bool:
        return False

    @property
    def valid(self) -> bool:
        return True


class StaticCredential(credentials.Base):  # type: ignore[misc]
    def __init__(self, token: str) -> None:
        self._g_credential = StaticTokenCredentials(token)

    def get_credential(self) -> google.auth.credentials.Credentials:
        return self._g_credential


def load_credential(settings: Settings) -> tuple[credentials.Base, str | None]:
    """(credential, project ID from it); ProviderConfigurationError saying what is missing or wrong."""
    if settings.fcm_credentials_json is not None:
        try:
            info = json.loads(settings.fcm_credentials_json.get_secret_value())
            cert = credentials.Certificate(info)
        except (ValueError, TypeError) as exc:
            raise ProviderConfigurationError(
                f"FCM_CREDENTIALS_JSON is not a service-account JSON: {type(exc).__name__}"
            ) from None
        return cert, cert.project_id
    if settings.google_application_credentials is not None:
        path = Path(settings.google_application_credentials).expanduser()
        if not path.is_file():
            raise ProviderConfigurationError(f"GOOGLE_APPLICATION_CREDENTIALS={path} does not exist")
        try:
            cert = credentials.Certificate(str(path))
        except (ValueError, TypeError, OSError) as exc:
            raise ProviderConfigurationError(
                f"GOOGLE_APPLICATION_CREDENTIALS={path} is not a service-account JSON: {exc}"
            ) from None
        return cert, cert.project_id
    if settings.fcm_api_url:
        return StaticCredential(DEV_TOKEN), None
    raise ProviderConfigurationError(
        "PUSH_PROVIDER=fcm needs service-account credentials: GOOGLE_APPLICATION_CREDENTIALS (a file) "
        "or FCM_CREDENTIALS_JSON (its content)"
    )


class FcmProvider:
    name = "fcm"

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

    async def _ensure_token(self) -> None:
        """Refresh an expiring OAuth token in a thread: the SDK would do it synchronously on the loop."""
        if self._static:
            return
        credential = self._credential.get_credential()
        if not credential.valid:
            import google.auth.transport.requests

            await asyncio.to_thread(credential.refresh, google.auth.transport.requests.Request())

    # -- sending --------------------------------------------------------------------------------
    async def send_push(self, message: PushMessage, *, idempotency_key: str) -> DeliveryResult:
        tokens = await self._recipients(message)
        app = self._app_for_loop()
        try:
            await self._ensure_token()
        except Exception as exc:
            raise DeliveryError(
                ErrorCode.AUTH_ERROR,
                f"cannot obtain an FCM access token: {type(exc).__name__}",
            ) from None
        data = {**message.data, "notificationId": message.notification_id}
        outcomes: list[dict[str, Any]] = []
        errors: list[tuple[str, DeliveryError]] = []
        for start in range(0, len(tokens), FCM_BATCH_LIMIT):
            chunk = tokens[start : start + FCM_BATCH_LIMIT]
            batch = [
                messaging.Message(
                    token=token,
                    notification=messaging.Notification(title=message.title, body=message.body),
                    data=data,
                    **_shown_once(message.notification_id),
                )
                for token in chunk
            ]
            try:
                response = await messaging.send_each_async(batch, app=app)
            except exceptions.FirebaseError as exc:  # the whole call failed before any send
                raise classify(exc) from None
            for token, item in zip(chunk, response.responses, strict=True):
                if item.success:
                    outcomes.append({"token": mask_token(token), "outcome": "sent", "messageId": item.message_id})
                else:
                    error = classify(item.exception)
                    errors.append((token, error))
                    outcomes.append(
                        {
                            "token": mask_token(token),
                            "outcome": "failed",
                            "errorCode": error.code.value,
                            "error": error.message,
                        }
                    )
        return await self._conclude(message, tokens, outcomes, errors)

    async def _recipients(self, message: PushMessage) -> list[str]:
        if message.token:
            if await devices.token_is_invalid(self._db, message.token):
                raise DeliveryError(
                    ErrorCode.UNREGISTERED, f"device token {mask_token(message.token)} was unregistered earlier"
                )
            return [message.token]
        if not message.user_id:
            raise DeliveryError(ErrorCode.VALIDATION_ERROR, "a push needs a userId or a device token")
        tokens = await devices.valid_tokens(self._db, message.user_id)
        if not tokens:
            raise DeliveryError(ErrorCode.NO_VALID_DEVICES, f"user {message.user_id} has no valid registered device")
        return tokens

    async def _conclude(
        self,
        message: PushMessage,
        tokens: list[str],
        outcomes: list[dict[str, Any]],
        errors: list[tuple[str, DeliveryError]],
    ) -> DeliveryResult:
        dead = [token for token, error in errors if error.code is ErrorCode.UNREGISTERED]
        if dead:
            await devices.mark_invalid(self._db, dead, ErrorCode.UNREGISTERED.value)
        sent = [o for o in outcomes if o["outcome"] == "sent"]
        sent_tokens = [t for t in tokens if t not in {tok for tok, _ in errors}]
        if sent_tokens:
            try:
                await devices.mark_used(self._db, sent_tokens)
            except Exception as exc:  # bookkeeping only
                log.warning("could not update device last_used_at: %s", type(exc).__name__)
        details: dict[str, Any] = {"devices": outcomes, "sent": len(sent), "failed": len(errors)}
        if sent:
            ids = [o["messageId"] for o in sent]
            return DeliveryResult(
                provider=self.name,
                provider_message_id=ids[0] if len(ids) == 1 else f"{ids[0]} (+{len(ids) - 1} more)",
                details=details,
            )
        raise self._failure(message, errors, details)

    def _failure(
        self, message: PushMessage, errors: list[tuple[str, DeliveryError]], details: dict[str, Any]
    ) -> DeliveryError:
        retryable = [e for _, e in errors if e.retryable]
        if retryable:
            # Rate limits first (they carry the longest wait), then the longest Retry-After.
            retryable.sort(key=lambda e: (e.category is not ErrorCategory.RATE_LIMITED, -(e.retry_after or 0)))
            chosen = retryable[0]
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
