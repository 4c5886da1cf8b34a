"""``POST /api/ingest``: HTTP ingestion of device payloads, authenticated by the device key (apikey).

The body is one payload in the national (``data``) or geowarn (``readings``) style; the key is in
the body or in the ``X-Device-Key`` header. The raw bytes go to the same
:class:`~geowarn.monitoring.ingest.Ingestor` as MQTT, so everything not stored is dead-lettered
with the payload, including requests refused as unauthenticated or unreadable.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Request

from geowarn.api.problems import PayloadTooLarge
from geowarn.api.routes.monitoring_common import IngestorDep
from geowarn.errors import AuthenticationFailed, InvalidInput, PermissionDenied
from geowarn.monitoring.ingest import RawPayload
from geowarn.monitoring.payloads import MAX_PAYLOAD_BYTES, MAX_READINGS

router = APIRouter(tags=["monitoring: ingestion"])

MAX_BODY_BYTES = 8 * 1024 * 1024
_UNAUTHENTICATED = ("unknown_device", "unauthorised", "bad_identity")
_UNREADABLE = ("bad_json", "bad_shape")


def _too_large(size: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the body ({size}) exceeds the limit", message_zh=f"请求体超过上限（{MAX_BODY_BYTES // 1048576} MB）"
    )


async def raw_body(request: Request) -> bytes:
    """The request body as bytes, refused with 413 beyond 8 MB (declared or real) before it is all read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large(f"{declared} bytes declared")
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large("more than that")
        parts.append(chunk)
    return b"".join(parts)


def _with_header_key(body: bytes, key: str) -> bytes:
    """The body with the ``X-Device-Key`` key added when it carries none.

    ``parse_payload`` refuses a body without an apikey before the Ingestor could use the header's,
    so the key is put into the document (unreadable bodies pass unchanged and are refused as such).
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(doc, dict) or doc.get("apikey") is not None or doc.get("apiKey") is not None:
        return body
    doc["apikey"] = key
    return orjson.dumps(doc)


def _compact(body: bytes) -> bytes:
    """A pretty-printed body above the parser's 1 MB limit, re-serialised compactly (unchanged if unreadable)."""
    try:
        return orjson.dumps(orjson.loads(body))
    except orjson.JSONDecodeError:
        return body


@router.post(
    "/ingest",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}},
)
def ingest(
    request: Request,
    ingestor: IngestorDep,
    body: Annotated[bytes, Depends(raw_body)],
    x_device_key: Annotated[str | None, Header(max_length=64)] = None,
) -> dict[str, Any]:
    """Store one device payload; 200 with the counts once the device is authenticated.

    401: unknown device, wrong or missing key; 403: retired device; 422: unreadable JSON or too many
    readings (> 10,000); 413: body over 8 MB. Every refused payload is kept as a dead letter.
    """
    if x_device_key:
        body = _with_header_key(body, x_device_key)
    if len(body) > MAX_PAYLOAD_BYTES:
        body = _compact(body)
    report = ingestor.ingest([RawPayload(body, "http", request.url.path, apikey=x_device_key)])
    reasons = set(report.reasons)
    stored = report.accepted + report.duplicate
    if not stored and reasons & set(_UNAUTHENTICATED):
        raise AuthenticationFailed(
            "unknown device or wrong apikey", message_zh="设备未登记或 apikey 不正确", reasons=",".join(sorted(reasons))
        )
    if not stored and "retired_device" in reasons:
        raise PermissionDenied("the device is retired", message_zh="设备已停用")
    if not stored and reasons & set(_UNREADABLE):
        raise InvalidInput("the payload is not a readable JSON object", message_zh="数据包不是有效的 JSON 对象")
    if "too_large" in reasons:
        raise _too_large(f"{len(body)} bytes of compact JSON > {MAX_PAYLOAD_BYTES}")
    if "too_many" in reasons:
        raise InvalidInput(
            f"at most {MAX_READINGS} readings per request",
            message_zh=f"每次最多上报 {MAX_READINGS} 条读数",
        )
    return report.as_dict()
