"""With ENCRYPTION_KEYS set, Temporal's history holds only ciphertext for recipients and bodies,
keys rotate without losing old payloads, and operators still read plaintext through the codec."""

from __future__ import annotations

import uuid
from pathlib import Path

from temporalio.client import Client

from notifications.codec import ENCODING, AesGcmCodec, new_key_spec, parse_keys
from tests.conftest import make_settings, make_system

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
