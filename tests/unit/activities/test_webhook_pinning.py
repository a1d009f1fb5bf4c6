"""A webhook delivery connects to an address its SSRF check passed, never to a later DNS answer: in
production a name resolving to a private address is refused with no connection made; otherwise the
request goes to the checked address, with the endpoint's Host header and TLS server name."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from activities.webhooks import WebhookActivities
from notifications.config import Settings
from notifications.sql.engine import Database
from notifications.sql.store.webhooks import Due

REFUSED = "resolves to a loopback, private or link-local address"


@dataclass
class Receiver:
    """Counts connections, records each request's headers, answers 200."""

    connections: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    port: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")[1:]:
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head if line)}
                await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append(headers)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")  # kept alive
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


async def _serve(receiver: Receiver, tls: ssl.SSLContext | None = None) -> asyncio.Server:
    server = await asyncio.start_server(receiver.serve, "127.0.0.1", 0, ssl=tls)
    receiver.port = server.sockets[0].getsockname()[1]
    return server


def _resolver(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """The event loop's resolver answers `answers` once per name (then fails, as a name that no longer
    resolves would), and other names as usual. Returns the names asked, in order."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo
    answers = dict(answers)
    asked: list[str] = []

    async def getaddrinfo(host: Any, port: Any, **kwargs: Any) -> list[Any]:
        asked.append(host)
        if host not in answers:
            return await real(host, port, **kwargs)
        addresses = answers.pop(host, None)
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "no longer resolves")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return asked


@contextlib.asynccontextmanager
async def _dispatcher(tmp_path: Path, **settings: Any) -> AsyncIterator[Callable[[str], Awaitable[dict[str, Any]]]]:
    """`deliver(url)`: one attempt of one event to `url` by a dispatcher with `settings`."""
    config = Settings(data_dir=tmp_path, webhook_timeout_seconds=3, webhook_retry_schedule="0,5", **settings)
    db = Database.from_settings(config)
    dispatcher = WebhookActivities(config, db)
    now = datetime.now(UTC)
    snapshot = {"id": "n-1", "channel": "email", "status": "sent", "workflow_id": "w", "priority": 5, "attempts": 1}
    snapshot.update(created_at=now.isoformat(), updated_at=now.isoformat())

    async def deliver(url: str) -> dict[str, Any]:
        return await dispatcher._deliver(
            Due(1, 0, "we_1", url, ["whsec_" + "A" * 32], 1, "notification.sent", 1, now, snapshot)
        )

    try:
        yield deliver
    finally:
        for client in dispatcher._http.values():
            await client.aclose()
        await db.dispose()


async def test_production_refuses_a_private_answer_without_connecting(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await _serve(receiver)
    # one public answer beside a private one refuses the lot: a connection might use either
    _resolver(monkeypatch, {"mixed.test": ["93.184.215.14", "127.0.0.1"]})
    try:
        async with _dispatcher(tmp_path, env="production") as deliver:
            for host in ("localhost", "127.0.0.1", "mixed.test"):
                outcome = await deliver(f"http://{host}:{receiver.port}/hook")
                assert outcome["last_error"] == REFUSED and outcome["status"] == "pending", (host, outcome)
    finally:
        server.close()
    assert receiver.connections == 0


async def test_the_request_goes_to_the_checked_address_with_the_endpoint_host(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await _serve(receiver)
    # answered once: had httpx resolved the name again when connecting, it would have found nothing;
    # 127.0.0.2 refuses the connection (the receiver listens on 127.0.0.1 only), so the next one is used
    asked = _resolver(monkeypatch, {"pinned.test": ["127.0.0.1"], "second.test": ["127.0.0.2", "127.0.0.1"]})
    try:
        async with _dispatcher(tmp_path, webhook_allow_private=True) as deliver:
            for host in ("localhost", "pinned.test", "second.test"):
                outcome = await deliver(f"http://{host}:{receiver.port}/hook")
                assert outcome["status"] == "succeeded" and outcome["last_status_code"] == 200, (host, outcome)
    finally:
        server.close()
    assert [r["host"] for r in receiver.requests] == [
        f"{h}:{receiver.port}" for h in ("localhost", "pinned.test", "second.test")
    ]
    assert all(r["webhook-id"] == "msg_1" and r["webhook-signature"].startswith("v1,") for r in receiver.requests)
    assert asked.count("pinned.test") == 1 and asked.count("second.test") == 1


async def test_https_presents_and_verifies_the_endpoint_name(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_pem, tls = _certificates(tmp_path, "pinned.test")
    tls.sni_callback = lambda _sock, name, _ctx: receiver.server_names.append(name)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_pem))  # httpx trusts our test CA
    server = await _serve(receiver, tls)
    _resolver(monkeypatch, {"pinned.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    try:
        async with _dispatcher(tmp_path, webhook_allow_private=True) as deliver:
            ok = await deliver(f"https://pinned.test:{receiver.port}/hook")
            # the same address under a name the certificate does not cover: verified on a connection of
            # its own (not the one kept alive for pinned.test), it fails and nothing is sent
            wrong = await deliver(f"https://other.test:{receiver.port}/hook")
    finally:
        server.close()
    assert ok["status"] == "succeeded", ok
    assert wrong["last_status_code"] is None and wrong["last_error"] == "ConnectError", wrong
    assert receiver.server_names == ["pinned.test", "other.test"]
    assert [r["host"] for r in receiver.requests] == [f"pinned.test:{receiver.port}"]


def _certificates(tmp_path: Path, name: str) -> tuple[Path, ssl.SSLContext]:
    """A test CA (its PEM written out) and a server context with a certificate for `name` it signed."""
    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhook test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_pem, chain = tmp_path / "ca.pem", tmp_path / "server.pem"
    ca_pem.write_bytes(ca.public_bytes(pem))
    private = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    chain.write_bytes(leaf.public_bytes(pem) + private)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(chain)
    return ca_pem, tls
