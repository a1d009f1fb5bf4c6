"""An aiosmtpd sink: stores every message, refuses or defers recipients on request."""

from __future__ import annotations

import email
import email.policy
from collections import defaultdict
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class SmtpSink:
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    scripts: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # rcpt -> SMTP replies
    rcpt_attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    controller: Controller | None = None
    port: int = 0

    def script(self, rcpt: str, *replies: str) -> None:
        self.scripts[rcpt].extend(replies)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        self.rcpt_attempts[address] += 1
        replies = self.scripts.get(address)
        if replies:
            return replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def start(self, port: int) -> SmtpSink:
        self.port = port
        self.controller = Controller(self, hostname="127.0.0.1", port=port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
