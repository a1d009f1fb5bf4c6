"""Email through an SMTP relay (aiosmtplib), for self-hosted deployments.

SMTP has no idempotency key. The Message-ID is derived from the notification ID
(`<id@domain>`), so a message repeated after a lost reply (the relay accepted it,
the answer never came) carries the same Message-ID and receivers and archives
that deduplicate on it show one message; the provider message ID stored is that
Message-ID. One attempt = one connection with one bounded timeout; aiosmtplib
never retries by itself. A batch is one connection too, its messages sent one
after another on it.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage as MimeMessage
from email.utils import formatdate
from typing import Any

import aiosmtplib

from activities.providers.base import BatchOutcome, DeliveryResult, EmailMessage, whole_call_failure
from activities.providers.httputil import scrub_addresses
from notifications.config import Settings
from notifications.errors import DeliveryError, ErrorCode, ProviderConfigurationError
from notifications.templating import html_to_text


class SmtpProvider:
    name = "smtp"
    max_batch = 50  # messages per connection: relays commonly cap a session's messages

    def __init__(self, settings: Settings) -> None:
        if not settings.smtp_host:
            raise ProviderConfigurationError("EMAIL_PROVIDER=smtp needs SMTP_HOST (and SMTP_PORT, default 587)")
        if settings.smtp_username and settings.smtp_password is None:
            raise ProviderConfigurationError("SMTP_USERNAME is set but SMTP_PASSWORD is missing")
        if "@" not in settings.mail_from:
            raise ProviderConfigurationError("EMAIL_PROVIDER=smtp needs MAIL_FROM to be an email address")
        self._host = settings.smtp_host
        self._port = settings.smtp_port
        self._security = settings.smtp_security
        self._username = settings.smtp_username
        self._password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        self._timeout = settings.provider_timeout_seconds
        self._domain = settings.smtp_message_id_domain or settings.mail_from.rsplit("@", 1)[-1].strip(" >")

    def message_id(self, notification_id: str) -> str:
        return f"<{notification_id}@{self._domain}>"

    def build_message(self, message: EmailMessage) -> MimeMessage:
        """multipart/alternative: the text part first, the html part last (the preferred one)."""
        mime = MimeMessage()
        mime["From"] = message.sender
        mime["To"] = message.to
        mime["Subject"] = message.subject
        mime["Date"] = formatdate(localtime=False, usegmt=True)
        mime["Message-ID"] = self.message_id(message.notification_id)
        for name, value in message.headers.items():
            mime[name] = value
        text = message.text or (html_to_text(message.html) if message.html else "")
        mime.set_content(text)
        if message.html:
            mime.add_alternative(message.html, subtype="html")
        return mime

    async def send_email(self, message: EmailMessage, *, idempotency_key: str) -> DeliveryResult:
        mime = self.build_message(message)
        try:
            await aiosmtplib.send(mime, **self._connection())
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise _failure(exc) from None
        return self._result(message)

    async def send_email_batch(self, messages: Sequence[EmailMessage], *, idempotency_key: str) -> list[BatchOutcome]:
        """One connection: a failure to open it fails the whole call; a recipient's refusal fails its
        message alone; a connection lost midway fails the messages not sent yet (transient)."""
        client = aiosmtplib.SMTP(**self._connection())
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            raise _failure(exc) from None
        outcomes: list[BatchOutcome] = []
        lost: DeliveryError | None = None  # the connection's end: every later message gets it
        try:
            for message in messages:
                if lost is None:
                    outcome, lost = await self._send_on(client, message)
                else:
                    outcome = BatchOutcome(message.notification_id, error=lost)
                outcomes.append(outcome)
        finally:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                if lost is None:
                    await client.quit()
            client.close()
        failure = whole_call_failure(outcomes)
        if failure is not None:  # nothing went out: the batch fails as one (the breaker counts it)
            raise failure
        return outcomes

    async def _send_on(
        self, client: aiosmtplib.SMTP, message: EmailMessage
    ) -> tuple[BatchOutcome, DeliveryError | None]:
        """One message on the open connection; the error that ended the connection, if it did."""
        try:
            await client.send_message(self.build_message(message))
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            # Unknown whether the relay took it (the same Message-ID on a retry), and the session is gone.
            error = _failure(exc)
            return BatchOutcome(message.notification_id, error=error), error
        except aiosmtplib.SMTPException as exc:  # answered: the relay reset the envelope, the session goes on
            return BatchOutcome(message.notification_id, error=classify(exc)), None
        except ValueError:  # aiosmtplib refuses an address it cannot put on the wire, before sending it
            error = DeliveryError(ErrorCode.INVALID_RECIPIENT, "the recipient address cannot be sent over SMTP")
            return BatchOutcome(message.notification_id, error=error), None
        return BatchOutcome(message.notification_id, result=self._result(message)), None

    def _connection(self) -> dict[str, Any]:
        return {
            "hostname": self._host,
            "port": self._port,
            "username": self._username,
            "password": self._password,
            "use_tls": self._security == "tls",
            "start_tls": self._security == "starttls",
            "timeout": self._timeout,
        }

    def _result(self, message: EmailMessage) -> DeliveryResult:
        return DeliveryResult(provider=self.name, provider_message_id=self.message_id(message.notification_id))


def _failure(exc: aiosmtplib.SMTPException | OSError) -> DeliveryError:
    """As a single send classifies it: SMTP replies by code, TLS as configuration, sockets as connection."""
    if isinstance(exc, aiosmtplib.SMTPException):
        return classify(exc)
    if isinstance(exc, ssl.SSLError):
        return DeliveryError(ErrorCode.CONFIGURATION_ERROR, f"TLS failure with the SMTP relay: {exc}")
    return DeliveryError(ErrorCode.CONNECTION_ERROR, f"cannot reach the SMTP relay: {exc}")


def classify(exc: aiosmtplib.SMTPException) -> DeliveryError:
    """SMTP reply codes: 4xx try again later, 5xx never; auth and TLS problems are configuration."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        replies = exc.recipients
        code = min((r.code for r in replies), default=550)
        if 400 <= code < 500:
            return DeliveryError(
                ErrorCode.PROVIDER_UNAVAILABLE, f"recipient deferred by the relay ({code})", details={"smtpCode": code}
            )
        return DeliveryError(
            ErrorCode.INVALID_RECIPIENT, f"recipient refused by the relay ({code})", details={"smtpCode": code}
        )
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        # once connected, the relay may have taken the message before going quiet
        connecting = isinstance(exc, aiosmtplib.SMTPConnectTimeoutError)
        return DeliveryError(
            ErrorCode.TIMEOUT,
            f"SMTP relay did not answer in time: {exc.message}",
            details={"ambiguous": not connecting},
        )
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return DeliveryError(
            ErrorCode.AUTH_ERROR, f"SMTP authentication rejected ({exc.code})", details={"smtpCode": exc.code}
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        code, text = exc.code, scrub_addresses(exc.message[:300])
        details: dict[str, object] = {"smtpCode": code}
        if 400 <= code < 500:
            return DeliveryError(ErrorCode.PROVIDER_UNAVAILABLE, f"SMTP {code}: {text}", details=details)
        if code in (530, 534, 535, 538):
            return DeliveryError(ErrorCode.AUTH_ERROR, f"SMTP {code}: {text}", details=details)
        if code == 552:
            return DeliveryError(ErrorCode.PAYLOAD_TOO_LARGE, f"SMTP {code}: {text}", details=details)
        if isinstance(exc, aiosmtplib.SMTPSenderRefused):
            return DeliveryError(
                ErrorCode.CONFIGURATION_ERROR, f"sender refused, check MAIL_FROM ({code})", details=details
            )
        if isinstance(exc, aiosmtplib.SMTPRecipientRefused) or code in (550, 551, 553):
            return DeliveryError(ErrorCode.INVALID_RECIPIENT, f"SMTP {code}: {text}", details=details)
        if 500 <= code < 600:
            return DeliveryError(ErrorCode.VALIDATION_ERROR, f"SMTP {code}: {text}", details=details)
        return DeliveryError(ErrorCode.PROVIDER_UNAVAILABLE, f"SMTP {code}: {text}", details=details)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return DeliveryError(
            ErrorCode.CONFIGURATION_ERROR, f"SMTP relay lacks a required feature: {scrub_addresses(exc.message)}"
        )
    if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPServerDisconnected):
        lost = isinstance(exc, aiosmtplib.SMTPServerDisconnected)  # dropped mid-session: maybe after DATA
        return DeliveryError(
            ErrorCode.CONNECTION_ERROR, f"SMTP connection failed: {exc.message}", details={"ambiguous": lost}
        )
    return DeliveryError(ErrorCode.SEND_FAILED, f"SMTP failure: {type(exc).__name__}")
