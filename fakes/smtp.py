"""An aiosmtpd sink: stores every message, refuses or defers recipients on request, or drops the connection."""

from __future__ import annotations

import email
import email.policy
import time
from collections import defaultdict
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

DROP = "DROP"  # scripted as a recipient's reply: the connection is closed instead of answering


@dataclass
class SmtpSink:
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    scripts: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # rcpt -> SMTP replies
    rcpt_attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    connections: int = 0  # SMTP sessions opened (their EHLO greetings: aiosmtplib sends one per connection)
    peers: list[Any] = field(default_factory=list)  # the client's (host, port) of each accepted message
    received: list[float] = field(default_factory=list)  # when each accepted message arrived (epoch seconds)
    controller: Controller | None = None
    port: int = 0

    def script(self, rcpt: str, *replies: str) -> None:
        self.scripts[rcpt].extend(replies)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.connections += 1
        session.host_name = hostname  # what aiosmtpd does itself when no handler takes EHLO
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        self.rcpt_attempts[address] += 1
        replies = self.scripts.get(address)
        if replies:
            reply = replies.pop(0)
            if reply == DROP:  # the relay goes away mid-session: the client sees the connection lost
                server.transport.close()
                return "421 4.3.2 connection dropped"  # written to a closed transport: never arrives
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.peers.append(session.peer)
        self.received.append(time.time())
        return "250 Message accepted for delivery"

    def start(self, port: int) -> SmtpSink:
        self.port = port
        self.controller = Controller(self, hostname="127.0.0.1", port=port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
