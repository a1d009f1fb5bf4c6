"""Encryption of notification content in Temporal's history (optional, on by setting a key).

With `ENCRYPTION_KEYS` set, every payload the client, worker and API hand to
Temporal (workflow inputs with recipients and bodies, activity inputs and
results, query results, failure messages) is AES-GCM encrypted before it leaves
the process; the server stores only ciphertext. Keys carry an ID, stored with
each payload, so keys can be rotated: the first key encrypts, every listed key
decrypts. Operators read plaintext through the codec endpoints of the API
(`/codec/encode`, `/codec/decode`), which the Web UI and `temporal --codec-endpoint` call.

    ENCRYPTION_KEYS="k2:<base64 32 bytes>,k1:<base64 32 bytes>"   # k2 encrypts, k1 still decrypts
    notifications keygen                                            # prints a new key
"""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

from notifications.converter import PayloadConverter

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"


class EncryptionKeyError(ValueError):
    """ENCRYPTION_KEYS is malformed, or a payload names a key that is not configured."""


def parse_keys(spec: str) -> list[tuple[str, bytes]]:
    keys: list[tuple[str, bytes]] = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key_id, sep, encoded = item.partition(":")
        if not sep or not key_id:
            raise EncryptionKeyError("ENCRYPTION_KEYS entries look like <key id>:<base64 key>")
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError as exc:
            raise EncryptionKeyError(f"key {key_id!r} is not valid base64") from exc
        if len(key) not in (16, 24, 32):
            raise EncryptionKeyError(f"key {key_id!r} must be 16, 24 or 32 bytes, not {len(key)}")
        keys.append((key_id, key))
    if not keys:
        raise EncryptionKeyError("ENCRYPTION_KEYS holds no key")
    return keys


def new_key_spec(key_id: str = "k1") -> str:
    return f"{key_id}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


class AesGcmCodec(PayloadCodec):
    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        self._current_id, current = keys[0]
        self._current = AESGCM(current)
        self._keys = {key_id: AESGCM(key) for key_id, key in keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(p) for p in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(12)
        ciphertext = self._current.encrypt(nonce, payload.SerializeToString(), self._current_id.encode())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: self._current_id.encode()},
            data=nonce + ciphertext,
        )

    def _decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption was switched on
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        key = self._keys.get(key_id)
        if key is None:
            raise EncryptionKeyError(f"payload encrypted with unknown key {key_id!r}")
        plain = key.decrypt(payload.data[:12], payload.data[12:], key_id.encode())
        return Payload.FromString(plain)


def data_converter(encryption_keys: str | None) -> DataConverter:
    converter = dataclasses.replace(DataConverter.default, payload_converter_class=PayloadConverter)
    if not encryption_keys:
        return converter
    return dataclasses.replace(
        converter,
        payload_codec=AesGcmCodec(parse_keys(encryption_keys)),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
