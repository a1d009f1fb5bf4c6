"""The codec server: the Web UI and `temporal --codec-endpoint` read encrypted payloads through it.

Protocol of Temporal's codec servers: POST `{"payloads": [...]}` (protobuf JSON) to
`/codec/encode` or `/codec/decode`. Auth is required (admin or the decode-only `codec`
role). A browser UI that cannot send a header (the dev server's Web UI) uses the token
as a path segment instead: `/codec/t/<token>/decode`, which `notifications dev` wires up.
With no ENCRYPTION_KEYS the codec is the identity.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from temporalio.api.common.v1 import Payload, Payloads

from api.deps import AppContext, api_principal, authenticate, context
from notifications.auth import InvalidTokenError, Principal
from notifications.codec import EncryptionKeyError

router = APIRouter(prefix="/codec", tags=["codec"])

CODEC_ROLES = ("admin", "codec")


def _check_role(principal: Principal) -> None:
    if principal.role not in CODEC_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="the codec needs the admin or codec role")


def _header_principal(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    _check_role(principal)
    return principal


async def _transform(request: Request, ctx: AppContext, operation: str) -> dict[str, Any]:
    try:
        body = await request.json()
        payloads: list[Payload] = list(ParseDict(body, Payloads()).payloads)
    except (ValueError, ParseError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"expected {{'payloads': [...]}}: {exc}") from None
    codec = ctx.client.temporal.data_converter.payload_codec
    try:
        if codec is not None:
            payloads = await (codec.encode(payloads) if operation == "encode" else codec.decode(payloads))
    except (EncryptionKeyError, ValueError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, detail=str(exc)) from None
    except Exception:  # cryptography's InvalidTag: tampered or foreign ciphertext
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, detail="payload cannot be decrypted") from None
    return MessageToDict(Payloads(payloads=payloads))


@router.post("/encode", name="codec.encode")
async def encode(
    request: Request, ctx: Annotated[AppContext, Depends(context)], _: Annotated[Principal, Depends(_header_principal)]
) -> dict[str, Any]:
    return await _transform(request, ctx, "encode")


@router.post("/decode", name="codec.decode")
async def decode(
    request: Request, ctx: Annotated[AppContext, Depends(context)], _: Annotated[Principal, Depends(_header_principal)]
) -> dict[str, Any]:
    return await _transform(request, ctx, "decode")


@router.post("/t/{token}/{operation}", name="codec.with_path_token", include_in_schema=False)
async def with_path_token(
    token: str, operation: str, request: Request, ctx: Annotated[AppContext, Depends(context)]
) -> dict[str, Any]:
    if operation not in ("encode", "decode"):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="use /encode or /decode")
    try:
        principal = api_principal(ctx, token)
    except InvalidTokenError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=str(exc)) from None
    _check_role(principal)
    return await _transform(request, ctx, operation)
