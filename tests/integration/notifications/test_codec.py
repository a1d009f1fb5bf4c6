"""With ENCRYPTION_KEYS set, Temporal's history holds only ciphertext for recipients and bodies,
keys rotate without losing old payloads, and operators still read plaintext through the codec."""

from __future__ import annotations

import uuid
from pathlib import Path

from temporalio.client import Client

from notifications.codec import ENCODING, AesGcmCodec, new_key_spec, parse_keys
from tests.support.system import make_settings, make_system

SECRET_BITS = ("patient.secret@example.com", "Your lab results", "Hemoglobin 13.5")


async def test_history_holds_only_ciphertext(temporal_address: str, database_url: str, tmp_path: Path) -> None:
    old_key = new_key_spec("k1")
    settings = make_settings(temporal_address, database_url, tmp_path, encryption_keys=old_key)
    nid = f"enc-{uuid.uuid4().hex[:8]}"
    async with make_system(settings) as system, system.worker():
        await system.client.enqueue_email(
            {"notificationId": nid, "to": SECRET_BITS[0], "subject": SECRET_BITS[1], "html": f"<p>{SECRET_BITS[2]}</p>"}
        )
        await system.wait_status(nid, "sent")
        status = await system.client.status(nid)  # the codec client reads plaintext
        assert status["status"] == "sent"

    plain_client = await Client.connect(temporal_address)  # what the server stores, undecoded
    history = await plain_client.get_workflow_handle(f"notification-{nid}").fetch_history()
    raw = history.to_json()
    for secret in SECRET_BITS:
        assert secret not in raw
    started = history.events[0].workflow_execution_started_event_attributes
    [payload] = started.input.payloads
    assert payload.metadata["encoding"] == ENCODING and payload.metadata["encryption-key-id"] == b"k1"

    # Key rotation: a new key encrypts, the old one still decrypts what it wrote.
    rotated = AesGcmCodec(parse_keys(new_key_spec("k2") + "," + old_key))
    [decoded] = await rotated.decode([payload])
    assert SECRET_BITS[0].encode() in decoded.data and SECRET_BITS[1].encode() in decoded.data
    [fresh] = await rotated.encode([decoded])
    assert fresh.metadata["encryption-key-id"] == b"k2"


async def test_codec_endpoints_show_plaintext_to_operators(
    temporal_address: str, database_url: str, tmp_path: Path
) -> None:
    import httpx
    from google.protobuf.json_format import MessageToDict
    from temporalio.api.common.v1 import Payloads

    from api.main import create_app
    from notifications.auth import mint_token

    settings = make_settings(temporal_address, database_url, tmp_path, encryption_keys=new_key_spec("k1"))
    nid = f"codec-{uuid.uuid4().hex[:8]}"
    async with make_system(settings) as system:
        async with system.worker():
            await system.client.enqueue_email(
                {"notificationId": nid, "to": SECRET_BITS[0], "subject": SECRET_BITS[1], "html": "<p>x</p>"}
            )
            await system.wait_status(nid, "sent")
        plain = await Client.connect(temporal_address)
        history = await plain.get_workflow_handle(f"notification-{nid}").fetch_history()
        encrypted = history.events[0].workflow_execution_started_event_attributes.input
        body = MessageToDict(Payloads(payloads=list(encrypted.payloads)))

        app = create_app(settings, client=system.client)
        admin = mint_token(settings, role="admin", ttl_seconds=600, subject="ops")
        codec_only = mint_token(settings, role="codec", ttl_seconds=600, subject="web-ui")
        service = mint_token(settings, role="service", ttl_seconds=600, subject="svc")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            decoded = await http.post("/codec/decode", json=body, headers={"Authorization": f"Bearer {admin}"})
            assert decoded.status_code == 200, decoded.text
            assert SECRET_BITS[0].encode() in _data(decoded.json())
            assert (await http.post("/codec/decode", json=body)).status_code == 401
            denied = await http.post("/codec/decode", json=body, headers={"Authorization": f"Bearer {service}"})
            assert denied.status_code == 403
            # The Web UI's form: the token in the path, CORS for its origin.
            via_path = await http.post(
                f"/codec/t/{codec_only}/decode", json=body, headers={"Origin": "http://localhost:8233"}
            )
            assert via_path.status_code == 200
            assert via_path.headers["access-control-allow-origin"] == "http://localhost:8233"
            assert SECRET_BITS[0].encode() in _data(via_path.json())
            assert (await http.post("/codec/t/not-a-token/decode", json=body)).status_code == 401
            # encode then decode round-trips
            encoded = await http.post(
                "/codec/encode", json=decoded.json(), headers={"Authorization": f"Bearer {admin}"}
            )
            assert encoded.status_code == 200 and SECRET_BITS[0].encode() not in _data(encoded.json())


def _data(body: dict[str, object]) -> bytes:
    import base64

    return b"".join(base64.b64decode(p.get("data", "")) for p in body["payloads"])  # type: ignore[union-attr, attr-defined]
